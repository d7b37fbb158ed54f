"""A Redis + gateway of their own, and workers started (and killed) by the test itself.

For the reliability tests that kill workers or run them with their own limits: nothing they do
can disturb the session's worker, and every heartbeat, job and queue in their Redis is theirs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from deploy.local import stack
from tests.utils.jobs import TERMINAL

STATUS_RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "canceled": 2}
# Heartbeat every 0.5 s: a killed worker's key expires after 2 s (3 intervals, rounded up).
FAST_HEARTBEAT_S = 0.5


class LoneStack:
    def __init__(self, workdir: Path, models: Mapping[str, Path], queues: str = "text") -> None:
        self.workdir = workdir
        self.models = dict(models)
        self.queues = queues
        self.redis = stack.start_redis(workdir / "redis")
        self.gateway = stack.start_gateway(
            f"{workdir.name}-gateway",
            self.redis.url(),
            workdir / "gateway.log",
            {"AMULET_REQUIRED_QUEUES": queues},
        )
        self.workers: list[stack.Proc] = []

    @property
    def procs(self) -> list[stack.Proc]:
        return [*self.workers, self.gateway.proc]

    def db(self):  # noqa: ANN201 - redis.Redis with str answers
        return self.redis.client()

    def start_worker(self, name: str, extra: Mapping[str, str] | None = None) -> stack.Proc:
        """Start a worker and wait until it is ready (every worker in this Redis counts as one)."""
        env = stack.worker_env(
            self.redis.url(),
            self.models,
            queues=self.queues,
            health_file=self.workdir / f"{name}-health.json",
            heartbeat_s=FAST_HEARTBEAT_S,
            extra=extra,
        )
        proc = stack.spawn(name, [stack.PYTHON, "-m", "worker"], self.workdir / f"{name}.log", env)
        self.workers.append(proc)

        def ready() -> bool:
            return any(
                hb.get("state") == "ready" and hb.get("pid") == proc.popen.pid
                for hb in stack.worker_heartbeats(self.db())
            )

        stack.wait_for(ready, stack.WORKER_READY_TIMEOUT_S, f"{name} ready", proc, interval=0.3)
        return proc

    @staticmethod
    def kill(proc: stack.Proc) -> float:
        """SIGKILL the worker (no shutdown, no acknowledgement); returns the monotonic time of the kill."""
        killed_at = time.monotonic()
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(10)
        return killed_at

    def stop(self) -> None:
        for proc in self.workers:
            proc.stop(timeout=30)
        self.gateway.stop()
        self.redis.stop()


@contextmanager
def lone_stack(workdir: Path, models: Mapping[str, Path], queues: str = "text") -> Iterator[LoneStack]:
    s = LoneStack(workdir, models, queues)
    try:
        yield s
    finally:
        s.stop()


def watch_job(
    c: httpx.Client,
    job_id: str,
    timeout: float,
    history: list[str],
    until: Callable[[dict], bool] | None = None,
    interval: float = 0.05,
) -> dict:
    """Poll GET /jobs/{id} (no wait) until it is terminal or ``until(job)``; every status seen goes
    into ``history``, so a test can check the status never moved backwards."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        r = c.get(f"/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        history.append(job["status"])
        if job["status"] in TERMINAL or (until is not None and until(job)):
            return job
        time.sleep(interval)
    raise AssertionError(f"job {job_id} not as expected after {timeout:.0f} s: {job}")


def assert_never_backwards(history: list[str]) -> None:
    ranks = [STATUS_RANK[s] for s in history]
    assert ranks == sorted(ranks), f"status moved backwards: {history}"
