"""A worker SIGKILLed while it runs a job (no shutdown, its Celery message never acknowledged):

- the job is detected as lost (its worker's heartbeat key expires), published again by the
  surviving worker's reaper, runs again and ends ``succeeded`` exactly once: one terminal
  ``job-done`` message, attempts 2, a result, and the status never moves backwards;
- with AMULET_MAX_ATTEMPTS=1 the lost job ends ``failed`` ``worker_lost`` instead of looping:
  nothing left in the queue or in the running set, and nothing published again afterwards.

Real processes: a Redis and a gateway of their own, workers started and killed here, the tiny
random Llama generating 2000 tokens (several seconds on 2 cores) so the kill lands mid-job.
Prints the time from the SIGKILL to the job running again (README, "Reliability").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import stack
from tests.utils.jobs import create_json_job
from tests.utils.lone_stack import LoneStack, assert_never_backwards, lone_stack, watch_job

pytestmark = pytest.mark.timeout(400)

LONG = {"max_new_tokens": 2000, "temperature": 0.0}
WORKER_ENV = {"AMULET_MAX_NEW_TOKENS": "2000"}


@pytest.fixture(scope="module")
def crash_stack(run_dir: Path, tiny_model_dirs: dict[str, Path]) -> Iterator[LoneStack]:
    with lone_stack(run_dir / "crash-stack", {"generate": tiny_model_dirs["generate"]}) as s:
        yield s


def _start_long_job(s: LoneStack, workers: list[stack.Proc], history: list[str]) -> tuple[str, stack.Proc]:
    """Submit a long job and wait until it runs; returns its id and the worker running it."""
    with s.gateway.client(timeout=30) as c:
        job_id = create_json_job(c, "generate", {"prompt": "Tell me a long story."}, LONG)["id"]
        watch_job(c, job_id, 60, history, until=lambda j: j["status"] == "running")
    worker = s.db().hget(f"amulet:job:{job_id}", "worker")
    running = [w for w in workers if worker.startswith(f"worker-{w.popen.pid}-")]
    assert len(running) == 1, worker
    return job_id, running[0]


def test_killed_worker_job_runs_again_and_succeeds_once(crash_stack: LoneStack) -> None:
    s = crash_stack
    workers = [s.start_worker("crash-a", WORKER_ENV), s.start_worker("crash-b", WORKER_ENV)]
    listener = s.db()  # held: a pub/sub outlives its client only by accident
    done = listener.pubsub(ignore_subscribe_messages=True)
    done.subscribe("amulet:job-done")
    history: list[str] = []
    try:
        job_id, victim = _start_long_job(s, workers, history)
        (survivor,) = [w for w in workers if w is not victim]
        time.sleep(0.5)  # inside the generation (several seconds)
        assert s.db().hget(f"amulet:job:{job_id}", "status") == "running"
        killed_at = s.kill(victim)
        with s.gateway.client(timeout=30) as c:
            again = watch_job(c, job_id, 60, history, until=lambda j: j["attempts"] == 2)
            running_again_s = time.monotonic() - killed_at
            assert again["status"] == "running", again
            job = watch_job(c, job_id, 120, history)
        print(f"\njob running again {running_again_s:.2f} s after its worker was SIGKILLed")
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        assert job["result"]["generated_tokens"] > 0
        assert_never_backwards(history)
        db = s.db()
        assert db.hget(f"amulet:job:{job_id}", "worker").startswith(f"worker-{survivor.popen.pid}-")
        # Finished once: exactly one terminal notification for the job.
        notices = []
        quiet_until = time.monotonic() + 1.5
        while time.monotonic() < quiet_until:
            # None also stands for the (ignored) subscribe confirmation: read until the time is up.
            if (m := done.get_message(timeout=0.2)) is not None:
                notices.append(m["data"])
        assert notices.count(job_id) == 1, notices
        assert db.llen("text") == 0 and db.scard("amulet:running") == 0
    finally:
        done.close()
        for w in workers:
            w.stop(timeout=30)


def test_lost_too_often_fails_worker_lost_and_does_not_loop(crash_stack: LoneStack) -> None:
    s = crash_stack
    env = {**WORKER_ENV, "AMULET_MAX_ATTEMPTS": "1"}
    workers = [s.start_worker("once-a", env), s.start_worker("once-b", env)]
    history: list[str] = []
    try:
        job_id, victim = _start_long_job(s, workers, history)
        s.kill(victim)
        with s.gateway.client(timeout=30) as c:
            job = watch_job(c, job_id, 60, history)
            assert job["status"] == "failed", job
            assert job["error"]["code"] == "worker_lost", job
            assert job["result"] is None
            assert_never_backwards(history)
            # No loop: after several reaper rounds nothing was published again, nothing is running.
            time.sleep(3)
            db = s.db()
            assert db.llen("text") == 0
            assert db.scard("amulet:running") == 0
            assert c.get(f"/jobs/{job_id}").json()["status"] == "failed"
            # The surviving worker serves the next job.
            short = create_json_job(c, "generate", {"prompt": "Hi"}, {"max_new_tokens": 4})["id"]
            assert watch_job(c, short, 60, [])["status"] == "succeeded"
    finally:
        for w in workers:
            w.stop(timeout=30)
