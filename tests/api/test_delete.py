"""DELETE /jobs/{id} deletes: an unfinished job is canceled first (a running one is stopped, see
tests/e2e/test_cancel_running.py), then its record, input and result are removed, and the job
answers 404 from then on. An Idempotency-Key that named it is free again, as if it had expired."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from deploy.local import stack
from tests.utils.jobs import assert_error_body, assert_succeeded, create_json_job, run_json_job

pytestmark = pytest.mark.timeout(120)


def _keys_of(db, job_id: str) -> list[str]:  # noqa: ANN001 - redis.Redis with str answers
    return sorted(db.scan_iter(f"*{job_id}*"))


def _assert_gone(c: httpx.Client, job_id: str) -> None:
    for r in (
        c.get(f"/jobs/{job_id}"),
        c.get(f"/jobs/{job_id}", params={"wait": 1}),
        c.get(f"/jobs/{job_id}/result"),
        c.post(f"/jobs/{job_id}/cancel"),
        c.delete(f"/jobs/{job_id}"),
    ):
        assert_error_body(r, 404, "job_not_found")


def test_a_queued_job_is_deleted_with_its_input(
    idle_client: httpx.Client, redis_server: stack.RedisServer
) -> None:
    db = redis_server.client(1)
    r = idle_client.post("/jobs", data={"task": "transcribe"}, files={"file": ("a.wav", b"not really audio")})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert _keys_of(db, job_id) == [f"amulet:input:{job_id}", f"amulet:job:{job_id}"]
    r = idle_client.delete(f"/jobs/{job_id}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    _assert_gone(idle_client, job_id)
    assert _keys_of(db, job_id) == []
    assert db.zscore("amulet:jobs", job_id) is None
    assert job_id not in [j["id"] for j in idle_client.get("/jobs", params={"limit": 100}).json()["jobs"]]


def test_a_finished_job_is_deleted_with_its_result(
    client: httpx.Client, redis_server: stack.RedisServer
) -> None:
    job = run_json_job(client, "synthesize", {"text": "Delete me."})
    assert_succeeded(job)
    assert client.get(f"/jobs/{job['id']}/result").status_code == 200
    assert client.delete(f"/jobs/{job['id']}").status_code == 204
    _assert_gone(client, job["id"])
    assert _keys_of(redis_server.client(0), job["id"]) == []


def test_a_canceled_job_can_be_deleted(idle_client: httpx.Client) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["cancel, then delete"]})
    assert idle_client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "canceled"
    assert idle_client.delete(f"/jobs/{job['id']}").status_code == 204
    _assert_gone(idle_client, job["id"])


def test_waiters_learn_at_once_that_the_job_is_gone(
    idle_client: httpx.Client, idle_gateway: stack.Gateway
) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["wait, then delete"]})
    with idle_gateway.client() as waiter:
        started = time.monotonic()
        timer = threading.Timer(0.3, lambda: idle_client.delete(f"/jobs/{job['id']}"))
        timer.start()
        r = waiter.get(f"/jobs/{job['id']}", params={"wait": 2})
        timer.join()
    assert_error_body(r, 404, "job_not_found")
    assert time.monotonic() - started < 1.9  # woken by the delete, not by the end of the wait


def test_an_idempotency_key_of_a_deleted_job_is_free_again(idle_client: httpx.Client) -> None:
    body = {"task": "embed", "input": {"texts": ["idempotent, then deleted"]}}
    headers = {"Idempotency-Key": f"delete-{time.monotonic_ns()}"}
    first = idle_client.post("/jobs", json=body, headers=headers)
    assert first.status_code == 202, first.text
    assert idle_client.post("/jobs", json=body, headers=headers).status_code == 200  # a replay
    assert idle_client.delete(f"/jobs/{first.json()['id']}").status_code == 204
    again = idle_client.post("/jobs", json=body, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["id"] != first.json()["id"]


def test_an_unknown_job_is_404(idle_client: httpx.Client) -> None:
    assert_error_body(idle_client.delete("/jobs/no-such-job"), 404, "job_not_found")
