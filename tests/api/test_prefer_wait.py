"""``Prefer: wait=N`` on POST /jobs: one request creates a job and, when it finishes within the wait,
answers 201 with the finished job (result included); otherwise 202 with the job as it is when the
wait ends. Preference-Applied says the wait (after the AMULET_MAX_WAIT_S cap); an Idempotency-Key
replay waits the same way and stays 200."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conftest import IDLE_MAX_WAIT_S

pytestmark = pytest.mark.timeout(180)

EMBED = {"task": "embed", "input": {"texts": ["one request, not two"]}}


def test_a_job_that_finishes_within_the_wait_answers_201_with_its_result(client: httpx.Client) -> None:
    started = time.monotonic()
    r = client.post("/jobs", json=EMBED, headers={"Prefer": "wait=50"}, timeout=70)
    elapsed = time.monotonic() - started
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    assert len(job["result"]["embeddings"]) == 1
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert r.headers["preference-applied"] == "wait=50"
    # Answered because the job finished, not because the 50 s ran out.
    assert elapsed < 40, elapsed
    # The same job as GET shows it.
    assert client.get(r.headers["location"]).json() == job


def test_a_job_that_fails_within_the_wait_also_answers_201(client: httpx.Client) -> None:
    # The tiny generator's context is 2048 tokens: the worker refuses this prompt (invalid_input).
    body = {"task": "generate", "input": {"prompt": "too long " * 3000}, "params": {"max_new_tokens": 4}}
    r = client.post("/jobs", json=body, headers={"Prefer": "wait=50"}, timeout=70)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "failed"
    assert r.json()["error"]["code"] == "invalid_input"


def test_a_job_still_queued_when_the_wait_ends_answers_202(idle_client: httpx.Client) -> None:
    # No worker listens behind the idle gateway: the job stays queued.
    started = time.monotonic()
    r = idle_client.post("/jobs", json=EMBED, headers={"Prefer": "wait=1"}, timeout=30)
    elapsed = time.monotonic() - started
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    assert r.headers["location"] == f"/jobs/{r.json()['id']}"
    assert r.headers["preference-applied"] == "wait=1"
    assert elapsed >= 0.9, elapsed


def test_the_wait_is_capped_by_max_wait(idle_client: httpx.Client) -> None:
    r = idle_client.post("/jobs", json=EMBED, headers={"Prefer": "respond-async, wait=100"}, timeout=30)
    assert r.status_code == 202, r.text
    assert r.headers["preference-applied"] == f"wait={IDLE_MAX_WAIT_S}"


@pytest.mark.parametrize("prefer", [None, "wait=soon", "wait=-1", "respond-async"])
def test_without_a_usable_wait_the_answer_is_immediate_and_applies_nothing(
    idle_client: httpx.Client, prefer: str | None
) -> None:
    # RFC 7240: a preference the server does not understand is ignored, not refused.
    headers = {"Prefer": prefer} if prefer is not None else {}
    started = time.monotonic()
    r = idle_client.post("/jobs", json=EMBED, headers=headers)
    assert r.status_code == 202, r.text
    assert "preference-applied" not in r.headers
    assert time.monotonic() - started < 0.9


def test_an_idempotent_replay_waits_too_and_stays_200(client: httpx.Client) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/jobs", json=EMBED, headers=key)
    assert first.status_code == 202, first.text
    # A client whose synchronous call timed out retries with the same key: it gets the same job,
    # finished this time, as a replay.
    again = client.post("/jobs", json=EMBED, headers={**key, "Prefer": "wait=50"}, timeout=70)
    assert again.status_code == 200, again.text
    assert again.headers["idempotency-replayed"] == "true"
    assert again.headers["preference-applied"] == "wait=50"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "succeeded"


def test_openapi_documents_the_wait_on_create(idle_client: httpx.Client) -> None:
    post = idle_client.get("/openapi.json").json()["paths"]["/jobs"]["post"]
    assert {"200", "201", "202"} <= set(post["responses"])
    assert "Preference-Applied" in post["responses"]["201"]["headers"]
    assert "prefer" in {p["name"] for p in post["parameters"] if p["in"] == "header"}
