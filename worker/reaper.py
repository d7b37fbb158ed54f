"""Finds running jobs whose worker vanished (killed, machine lost) and delivers them again.

Every worker runs one. Each heartbeat interval it walks ``amulet:running`` (start_job adds a
job, the transitions that end it remove it); for each job, the reap script of
shared/redis_protocol.py checks whether its recorded worker's heartbeat key has expired (3
intervals without a beat) and, if so, claims the lost attempt (``SET amulet:reap:{id}:{attempt}
NX``) so that one worker publishes its Celery message again, once per lost attempt. The new
delivery goes through start_job, which starts the job again (attempt + 1), or fails it with
``worker_lost`` after AMULET_MAX_ATTEMPTS; a duplicate (the broker restoring the dead worker's
unacknowledged message after its visibility timeout) is refused there while the job runs on a
live worker, or skipped once it is terminal. So a job whose worker vanished never stays
``running``, and it succeeds once.

A worker that is alive but whose heartbeat key expired anyway (Redis unreachable from it for 3
intervals) can have its job started a second time elsewhere; finish_job still records one
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
from shared.redis_protocol import ReapOutcome, as_text, reap_job, run
from shared.tasks import celery_task_name, queue_for

log = logging.getLogger(__name__)

# Workers silent this long are dropped from the amulet:workers index (their keys expired long
# ago). Every start is a new worker name, so killed workers would otherwise pile up there.
FORGET_WORKER_AFTER_S = 86_400


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
            job_id = as_text(raw_id)
            found = run(
                self.redis, reap_job(job_id=job_id, reaper=self.hostname, claim_ttl_s=self.claim_ttl_s)
            )
            if found.outcome is not ReapOutcome.LOST or found.task is None:
                continue
            self.app.send_task(
                celery_task_name(found.task), args=[job_id], task_id=job_id, queue=queue_for(found.task).value
            )
            log.warning(
                "job %s: its worker %s stopped beating during attempt %s; published it again",
                job_id,
                found.worker,
                found.attempt,
            )
            republished.append(job_id)
        return republished
