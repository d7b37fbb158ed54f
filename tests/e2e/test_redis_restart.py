"""Redis restarts (a real AOF-enabled redis-server stopped and started again on the same port and
directory) with a worker and a gateway attached:

- while Redis is down the gateway answers 503 redis_unavailable (never 500) and recovers by
  itself once Redis is back, without being restarted; the measured recovery time is printed;
- a worker that lived through the restart reconnects and runs new jobs;
- jobs queued while no worker consumed still run afterwards, finished results are still
  readable, and a job canceled while queued never runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.local import stack
from tests.utils.jobs import assert_error_body, assert_succeeded, create_json_job, wait_job

pytestmark = pytest.mark.timeout(300)

RECOVERY_LIMIT_S = 15.0


@dataclass
class AofStack:
    workdir: Path
    redis: stack.RedisServer
    gateway: stack.Gateway
    worker_env: dict[str, str]
    worker: stack.Proc | None = None

    @property
    def procs(self) -> list[stack.Proc]:
        return [p for p in (self.worker, self.gateway.proc, self.redis.proc) if p is not None]

    def stop_redis(self) -> None:
        self.redis.stop()
        assert not self.redis.proc.alive()

    def start_redis(self) -> None:
        self.redis = stack.start_redis(self.workdir / "redis", appendonly=True, port=self.redis.port)

    def start_worker(self) -> None:
        self.worker = stack.start_worker(
            "aof-worker", self.worker_env, self.workdir / "worker.log", self.redis.client()
        )

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=30)
            self.worker = None


@pytest.fixture(scope="module")
def aof_stack(run_dir: Path, tiny_model_dirs: dict[str, Path]) -> Iterator[AofStack]:
    workdir = run_dir / "aof-stack"
    redis = stack.start_redis(workdir / "redis", appendonly=True)
    gateway = stack.start_gateway(
        "aof-gateway", redis.url(), workdir / "gateway.log", {"AMULET_REQUIRED_QUEUES": "text"}
    )
    env = stack.worker_env(
        redis.url(),
        {"classify": tiny_model_dirs["classify"]},
        queues="text",
        health_file=workdir / "health.json",
    )
    s = AofStack(workdir, redis, gateway, env)
    try:
        s.start_worker()
        yield s
    finally:
        s.stop_worker()
        gateway.stop()
        s.redis.stop()


def _answers_while_down(c: httpx.Client, job_id: str) -> None:
    for r in (
        c.post("/jobs", json={"task": "classify", "input": {"text": "while down"}}),
        c.get(f"/jobs/{job_id}"),
        c.get(f"/jobs/{job_id}", params={"wait": 2}),
        c.post(f"/jobs/{job_id}/cancel"),
        c.delete(f"/jobs/{job_id}"),
        c.get("/tasks"),
    ):
        assert_error_body(r, 503, "redis_unavailable")
        assert r.headers["retry-after"]
    ready = c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["redis"] == "unreachable"
    assert c.get("/healthz").status_code == 200


def _seconds_until_served(c: httpx.Client, job_id: str, limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        r = c.get(f"/jobs/{job_id}")
        assert r.status_code in (200, 503), r.text  # never a 500 while it reconnects
        if r.status_code == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the gateway did not recover within {limit_s} s")


def test_worker_lives_through_a_restart_and_the_gateway_recovers(aof_stack: AofStack) -> None:
    with aof_stack.gateway.client(timeout=30) as c:
        before = wait_job(c, create_json_job(c, "classify", {"text": "before"})["id"], timeout=60)
        assert_succeeded(before)
        worker_pid = aof_stack.worker.popen.pid

        aof_stack.stop_redis()
        _answers_while_down(c, before["id"])
        aof_stack.start_redis()
        recovery_s = _seconds_until_served(c, before["id"], RECOVERY_LIMIT_S)
        print(f"\ngateway served again {recovery_s:.2f} s after Redis was back")

        # The finished result survived (AOF), and the same worker process runs new jobs.
        again = c.get(f"/jobs/{before['id']}").json()
        assert again["status"] == "succeeded" and again["result"] == before["result"]
        after = wait_job(c, create_json_job(c, "classify", {"text": "after"})["id"], timeout=90)
        assert_succeeded(after)
        assert aof_stack.worker.alive() and aof_stack.worker.popen.pid == worker_pid


def test_jobs_queued_without_a_worker_run_after_a_restart(aof_stack: AofStack) -> None:
    with aof_stack.gateway.client(timeout=30) as c:
        finished = wait_job(c, create_json_job(c, "classify", {"text": "finished"})["id"], timeout=60)
        assert_succeeded(finished)
        aof_stack.stop_worker()
        queued = [create_json_job(c, "classify", {"text": f"queued {i}"})["id"] for i in range(5)]
        canceled = create_json_job(c, "classify", {"text": "canceled while queued"})["id"]
        assert c.post(f"/jobs/{canceled}/cancel").json()["status"] == "canceled"

        aof_stack.stop_redis()
        aof_stack.start_redis()
        _seconds_until_served(c, finished["id"], RECOVERY_LIMIT_S)
        assert c.get(f"/jobs/{finished['id']}").json()["result"] == finished["result"]
        assert {c.get(f"/jobs/{j}").json()["status"] for j in queued} == {"queued"}

        aof_stack.start_worker()
        for job_id in queued:
            job = wait_job(c, job_id, timeout=90)
            assert_succeeded(job)
            assert job["attempts"] == 1
        # The canceled job's message was delivered and skipped: it never started.
        stack.wait_for(lambda: aof_stack.redis.client().llen("text") == 0, 30, "the text queue to drain")
        never = c.get(f"/jobs/{canceled}").json()
        assert never["status"] == "canceled" and never["started_at"] is None and never["attempts"] == 0
