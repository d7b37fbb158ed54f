"""Cancel: POST /jobs/{id}/cancel (DELETE /jobs/{id} deletes: tests/api/test_delete.py).

A queued job becomes canceled at once (200); a running job gets a cancel request (202: flag
in its hash + a message on amulet:cancel); a finished job is 409 job_finished; unknown is 404.
That a canceled job never runs on a real worker is proved in tests/e2e/test_redis_restart.py.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from deploy.local import stack
from shared import redis_keys
from shared.redis_protocol import StartOutcome, run, start_job
from tests.utils.jobs import assert_error_body, create_json_job

pytestmark = pytest.mark.timeout(60)


def _cancel(client: httpx.Client, job_id: str) -> httpx.Response:
    return client.post(f"/jobs/{job_id}/cancel")


def test_queued_job_becomes_canceled_and_stays_so(idle_client: httpx.Client) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["cancel me"]})
    r = _cancel(idle_client, job["id"])
    assert r.status_code == 200, r.text
    canceled = r.json()
    assert canceled["id"] == job["id"]
    assert canceled["status"] == "canceled"
    assert canceled["finished_at"] is not None and canceled["started_at"] is None
    assert idle_client.get(f"/jobs/{job['id']}").json()["status"] == "canceled"
    # Twice is a conflict: the job is finished.
    err = assert_error_body(_cancel(idle_client, job["id"]), 409, "job_finished")
    assert err["details"] == {"status": "canceled"}


def test_waiters_wake_up_when_a_job_is_canceled(idle_client: httpx.Client, idle_gateway) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["wake"]})
    with idle_gateway.client() as waiter:
        started = time.monotonic()
        # The idle gateway caps waits at 2 s; the cancel below lands well within it.
        timer = threading.Timer(0.3, lambda: _cancel(idle_client, job["id"]))
        timer.start()
        r = waiter.get(f"/jobs/{job['id']}", params={"wait": 2})
        timer.join()
    assert r.json()["status"] == "canceled"
    assert time.monotonic() - started < 1.9


def test_running_job_gets_a_cancel_request(
    idle_client: httpx.Client, redis_server: stack.RedisServer
) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["running"]})
    db = redis_server.client(1)
    # Start it exactly as a worker does, through the shared protocol.
    started = run(
        db,
        start_job(
            job_id=job["id"],
            worker="test-worker",
            model="a-model",
            max_attempts=3,
            result_ttl_s=60,
            exhausted_error={"code": "worker_lost", "message": "lost"},
        ),
    )
    assert started.outcome is StartOutcome.STARTED
    pubsub = db.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_keys.CANCEL_CHANNEL)
    try:
        r = idle_client.post(f"/jobs/{job['id']}/cancel")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "running"
        assert db.hget(redis_keys.job(job["id"]), redis_keys.CANCEL_REQUESTED_FIELD) == "1"
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
        assert message is not None and message["data"] == job["id"]
    finally:
        pubsub.close()
    # Asking again is harmless: still running, still 202.
    assert _cancel(idle_client, job["id"]).status_code == 202


def test_finished_job_is_409(client: httpx.Client) -> None:
    job = create_json_job(client, "classify", {"text": "done"})
    assert client.get(f"/jobs/{job['id']}", params={"wait": 60}).json()["status"] == "succeeded"
    err = assert_error_body(_cancel(client, job["id"]), 409, "job_finished")
    assert err["details"] == {"status": "succeeded"}
    # The result is untouched.
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"


def test_unknown_job_is_404(idle_client: httpx.Client) -> None:
    assert_error_body(_cancel(idle_client, "no-such-job"), 404, "job_not_found")
