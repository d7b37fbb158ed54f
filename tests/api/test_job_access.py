"""Jobs belong to the key that created them: another key gets 404 for them, an admin key sees every
job; GET /jobs lists the caller's jobs, newest first, a page at a time. Without keys (the idle
gateway) every client sees every job, as before keys existed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from deploy.local import stack
from tests.api.conftest import ADMIN_KEY, OWNER_KEYS
from tests.utils.jobs import assert_error_body

pytestmark = pytest.mark.timeout(120)

ALICE, BOB = OWNER_KEYS


def _client(gateway: stack.Gateway, key: str) -> httpx.Client:
    client = gateway.client(timeout=30)
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture(scope="module")
def alice(owners_gateway: stack.Gateway) -> Iterator[httpx.Client]:
    with _client(owners_gateway, ALICE) as c:
        yield c


@pytest.fixture(scope="module")
def bob(owners_gateway: stack.Gateway) -> Iterator[httpx.Client]:
    with _client(owners_gateway, BOB) as c:
        yield c


@pytest.fixture(scope="module")
def admin(owners_gateway: stack.Gateway) -> Iterator[httpx.Client]:
    with _client(owners_gateway, ADMIN_KEY) as c:
        yield c


def _create(c: httpx.Client, text: str, task: str = "embed") -> str:
    body = {"task": task, "input": {"texts": [text]} if task == "embed" else {"text": text}}
    r = c.post("/jobs", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _all_pages(c: httpx.Client, **params: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        r = c.get("/jobs", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([job["id"] for job in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_another_key_gets_404_for_a_job_and_an_admin_sees_it(
    alice: httpx.Client, bob: httpx.Client, admin: httpx.Client
) -> None:
    job_id = _create(alice, "alice's")
    assert alice.get(f"/jobs/{job_id}").status_code == 200
    for r in (
        bob.get(f"/jobs/{job_id}"),
        bob.get(f"/jobs/{job_id}", params={"wait": 1}),
        bob.get(f"/jobs/{job_id}/result"),
        bob.post(f"/jobs/{job_id}/cancel"),
        bob.delete(f"/jobs/{job_id}"),
    ):
        assert_error_body(r, 404, "job_not_found")
    assert alice.get(f"/jobs/{job_id}").json()["status"] == "queued"  # bob changed nothing
    assert admin.get(f"/jobs/{job_id}").status_code == 200
    assert admin.post(f"/jobs/{job_id}/cancel").json()["status"] == "canceled"
    assert admin.delete(f"/jobs/{job_id}").status_code == 204
    assert_error_body(alice.get(f"/jobs/{job_id}"), 404, "job_not_found")


def test_a_job_records_the_key_id_never_the_key(alice: httpx.Client, redis_server: stack.RedisServer) -> None:
    job_id = _create(alice, "whose")
    record = redis_server.client(8).hgetall(f"amulet:job:{job_id}")
    assert record["owner"] == hashlib.sha256(ALICE.encode()).hexdigest()[:32]
    db = redis_server.client(8)
    for key in db.scan_iter("*"):
        assert ALICE not in key
        if db.type(key) == "hash":
            assert all(ALICE not in value for value in db.hgetall(key).values())


def test_idempotency_keys_are_per_api_key(alice: httpx.Client, bob: httpx.Client) -> None:
    body = {"task": "embed", "input": {"texts": ["same key, two callers"]}}
    headers = {"Idempotency-Key": "shared-by-chance"}
    first = alice.post("/jobs", json=body, headers=headers)
    second = bob.post("/jobs", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    assert first.json()["id"] != second.json()["id"]
    assert alice.post("/jobs", json=body, headers=headers).json()["id"] == first.json()["id"]


def test_each_key_lists_its_own_jobs_newest_first_and_an_admin_lists_all(
    alice: httpx.Client, bob: httpx.Client, admin: httpx.Client
) -> None:
    mine = [_create(alice, f"list {i}") for i in range(5)]
    theirs = [_create(bob, f"theirs {i}") for i in range(2)]
    alice_jobs = [job_id for page in _all_pages(alice, limit=100) for job_id in page]
    assert alice_jobs[:5] == mine[::-1]
    assert not set(theirs) & set(alice_jobs)
    assert [j for page in _all_pages(bob, limit=100) for j in page][:2] == theirs[::-1]
    everyone = [j for page in _all_pages(admin, limit=100) for j in page]
    assert everyone[:7] == (mine + theirs)[::-1]
    listed = alice.get("/jobs", params={"limit": 1}).json()["jobs"][0]
    assert listed["id"] == mine[-1] and listed["status"] == "queued"
    assert "result" not in listed and listed["links"]["self"] == f"/jobs/{mine[-1]}"


def test_pages_follow_the_cursor_without_gaps_or_repeats(owners_gateway: stack.Gateway) -> None:
    with _client(owners_gateway, "x") as nobody:
        assert_error_body(nobody.get("/jobs"), 403, "forbidden")
    # A key of its own would need a gateway of its own: admin's view, fixed by a snapshot.
    with _client(owners_gateway, ADMIN_KEY) as c:
        before = [j for page in _all_pages(c, limit=100) for j in page]
        pages = _all_pages(c, limit=3)
        assert all(len(page) <= 3 for page in pages)
        assert [j for page in pages for j in page] == before
        # New jobs created between pages appear on the first page, not in the middle.
        first = c.get("/jobs", params={"limit": 2}).json()
        newer = _create(c, "created while paging")
        rest = _all_pages(c, limit=2, cursor=first["next_cursor"]) if first["next_cursor"] else []
        assert [j["id"] for j in first["jobs"]] + [j for page in rest for j in page] == before
        assert c.get("/jobs", params={"limit": 1}).json()["jobs"][0]["id"] == newer


def test_filters_by_status_and_task(alice: httpx.Client) -> None:
    canceled = _create(alice, "filter me")
    alice.post(f"/jobs/{canceled}/cancel")
    classified = _create(alice, "filter by task", task="classify")
    by_status = alice.get("/jobs", params={"status": "canceled", "limit": 100}).json()["jobs"]
    assert canceled in [j["id"] for j in by_status] and {j["status"] for j in by_status} == {"canceled"}
    both = alice.get("/jobs", params=[("status", "canceled"), ("status", "queued"), ("limit", "100")]).json()
    assert {j["status"] for j in both["jobs"]} <= {"canceled", "queued"}
    assert canceled in [j["id"] for j in both["jobs"]]
    by_task = alice.get("/jobs", params={"task": "classify", "limit": 100}).json()["jobs"]
    assert [j["id"] for j in by_task] == [classified]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"status": "nope"}, {"task": "nope"}, {"cursor": "not-a-cursor"}]
)
def test_a_bad_page_request_is_422(alice: httpx.Client, params: dict[str, object]) -> None:
    assert_error_body(alice.get("/jobs", params=params), 422, "invalid_request")


def test_without_keys_every_job_is_listed(idle_client: httpx.Client) -> None:
    job_id = idle_client.post("/jobs", json={"task": "embed", "input": {"texts": ["open"]}}).json()["id"]
    listed = idle_client.get("/jobs", params={"limit": 5}).json()
    assert listed["jobs"][0]["id"] == job_id
