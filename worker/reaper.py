"""Finds running jobs whose worker vanished (killed, machine lost) and delivers them again.

Every worker runs one. Each heartbeat interval it walks ``amulet:running`` (START_SCRIPT adds a
job, FINISH_SCRIPT removes it); a job whose recorded worker's heartbeat key has expired (3
intervals without a beat) gets its Celery message published again. ``SET amulet:reap:{id}:{attempt}
NX`` makes one worker do it, once per lost attempt. The new delivery goes through START_SCRIPT,
which starts the job again (attempt + 1), or fails it with ``worker_lost`` past
AMULET_MAX_ATTEMPTS; a duplicate (the broker restoring the dead worker's unacknowledged message
after its visibility timeout) is refused there while the job runs on a live worker, or skipped
once it is terminal. So a job whose worker vanished never stays ``running``, and it succeeds once.

A worker that is alive but whose heartbeat key expired anyway (Redis unreachable from it for 3
intervals) can have its job started a second time elsewhere; FINISH_SCRIPT still records one
outcome.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from celery import Celery

from shared import redis_keys
from shared.tasks import TaskName, celery_task_name, queue_for

log = logging.getLogger(__name__)

# Workers silent this long are dropped from the amulet:workers index (their keys expired long
# ago). Every start is a new worker name, so killed workers would otherwise pile up there.
FORGET_WORKER_AFTER_S = 86_400


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class Reaper:
    def __init__(self, client: redis.Redis, app: Celery, hostname: str, interval_s: float) -> None:
        self.redis = client
        self.app = app
        self.hostname = hostname
        self.interval_s = interval_s
        # Bounds duplicate messages when a re-published one waits long in a busy queue; a new
        # attempt has a claim key of its own, so it never delays the next loss's detection.
        self.claim_ttl_s = max(60, math.ceil(10 * interval_s))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)

    def _loop(self) -> None:
        failing = False
        while not self._stop.wait(self.interval_s):
            try:
                self.reap_once()
                failing = False
            except Exception as exc:  # the reaper must outlive Redis outages
                if not failing:
                    log.warning("reaper: %s; retrying every %.1f s", exc, self.interval_s)
                failing = True

    def reap_once(self) -> list[str]:
        """Re-publish the running jobs whose worker is gone; returns their ids."""
        self.redis.zremrangebyscore(redis_keys.WORKERS_ZSET, "-inf", time.time() - FORGET_WORKER_AFTER_S)
        republished = []
        for raw_id in self.redis.smembers(redis_keys.RUNNING_SET):
            job_id = _text(raw_id) or ""
            status, worker, task, attempts = (
                _text(v)
                for v in self.redis.hmget(redis_keys.job(job_id), "status", "worker", "task", "attempts")
            )
            if status != "running":  # finished (or expired) after START added it: tidy up
                self.redis.srem(redis_keys.RUNNING_SET, job_id)
                continue
            if worker and self.redis.exists(redis_keys.worker(worker)):
                continue
            claim = redis_keys.reap_claim(job_id, attempts or "0")
            if not self.redis.set(claim, self.hostname, nx=True, ex=self.claim_ttl_s):
                continue
            name = TaskName(task)
            self.app.send_task(
                celery_task_name(name), args=[job_id], task_id=job_id, queue=queue_for(name).value
            )
            log.warning(
                "job %s: its worker %s stopped beating during attempt %s; published it again",
                job_id,
                worker,
                attempts,
            )
            republished.append(job_id)
        return republished
