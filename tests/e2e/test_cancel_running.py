"""Canceling a running job (POST /jobs/{id}/cancel while it runs): the worker stops it and it ends
``canceled``, with no result, well before it would have finished; the worker serves the next job.
Deleting a running job (DELETE /jobs/{id}) stops it the same way, and nothing of it comes back.

The tiny random Llama generating 2000 tokens runs for several seconds on 2 cores; generation is
stopped at the next token once the cancel reaches the worker (pub/sub ``amulet:cancel``). Prints
the cancel latency, cancel to ``canceled`` (README, "Reliability").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import stack
from tests.utils.jobs import create_json_job, wait_job
from tests.utils.lone_stack import LoneStack, assert_never_backwards, lone_stack, watch_job

pytestmark = pytest.mark.timeout(300)

LONG = {"max_new_tokens": 2000, "temperature": 0.0}


@pytest.fixture(scope="module")
def cancel_stack(run_dir: Path, tiny_model_dirs: dict[str, Path]) -> Iterator[LoneStack]:
    with lone_stack(run_dir / "cancel-stack", {"generate": tiny_model_dirs["generate"]}) as s:
        s.start_worker("cancel-worker", {"AMULET_MAX_NEW_TOKENS": "2000"})
        yield s


def test_running_generation_is_stopped_and_ends_canceled(cancel_stack: LoneStack) -> None:
    with cancel_stack.gateway.client(timeout=60) as c:
        # How long the same job takes when nobody cancels it.
        full = wait_job(c, create_json_job(c, "generate", {"prompt": "Tell me a long story."}, LONG)["id"])
        assert full["status"] == "succeeded" and full["result"]["generated_tokens"] == 2000, full
        full_run_s = full["timings"]["run_s"]

        history: list[str] = []
        job_id = create_json_job(c, "generate", {"prompt": "Tell me a long story."}, LONG)["id"]
        watch_job(c, job_id, 60, history, until=lambda j: j["status"] == "running")
        time.sleep(0.3)
        asked_at = time.monotonic()
        r = c.post(f"/jobs/{job_id}/cancel")
        assert r.status_code == 202 and r.json()["status"] == "running", r.text
        job = watch_job(c, job_id, 60, history)
        latency_s = time.monotonic() - asked_at
        print(f"\ncanceled {latency_s:.2f} s after the cancel (the full job runs {full_run_s:.2f} s)")
        assert job["status"] == "canceled", job
        assert job["result"] is None and job["error"] is None
        assert_never_backwards(history)
        # Stopped early: well before the uncanceled run would have ended.
        assert job["timings"]["run_s"] < full_run_s * 0.75, (job["timings"], full_run_s)
        assert cancel_stack.db().scard("amulet:running") == 0

        after = wait_job(c, create_json_job(c, "generate", {"prompt": "Hi"}, {"max_new_tokens": 4})["id"])
        assert after["status"] == "succeeded", after


def test_a_deleted_running_job_is_stopped_and_never_comes_back(cancel_stack: LoneStack) -> None:
    db = cancel_stack.db()
    with cancel_stack.gateway.client(timeout=60) as c:
        job_id = create_json_job(c, "generate", {"prompt": "Tell me a long story."}, LONG)["id"]
        watch_job(c, job_id, 60, [], until=lambda j: j["status"] == "running")
        time.sleep(0.3)
        r = c.delete(f"/jobs/{job_id}")
        assert r.status_code == 204, r.text
        assert r.content == b""
        assert c.get(f"/jobs/{job_id}").status_code == 404
        # The worker stops the generation (the cancel channel) and serves the next job; its late
        # outcome writes nothing, so the job stays gone.
        after = wait_job(c, create_json_job(c, "generate", {"prompt": "Hi"}, {"max_new_tokens": 4})["id"])
        assert after["status"] == "succeeded", after
        assert c.get(f"/jobs/{job_id}").status_code == 404
        assert [key for key in db.scan_iter(f"*{job_id}*")] == []
        assert db.scard("amulet:running") == 0
        # Its thread's outcome found no record (it may land just after the next job's).
        log_path = cancel_stack.workers[0].log_path
        stack.wait_for(
            lambda: f"job {job_id}: record gone" in log_path.read_text(), 30, "the dropped outcome"
        )
        assert [key for key in db.scan_iter(f"*{job_id}*")] == []
