"""Reading the live workers' heartbeats (shared/worker_heartbeat.py) and what they imply: which
tasks are enabled, with which models, and which queues have ready workers."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from pydantic import ValidationError
from redis.asyncio import Redis

from api.schemas import TaskInfo, TaskModel
from api.uploads import JSON_MEDIA_TYPE, MULTIPART_MEDIA_TYPE
from shared import redis_keys
from shared.redis_protocol import as_text
from shared.tasks import AUDIO_INPUT_TASKS, TaskName, queue_for
from shared.worker_heartbeat import WorkerHeartbeat

log = logging.getLogger(__name__)

# POST /jobs reuses the live-worker view for this long instead of reading the heartbeats (two
# round trips) on every request. Workers beat every few seconds and count as gone only after
# AMULET_WORKER_STALE_S, so a view this old says nothing a fresh read would not.
WORKER_VIEW_MAX_AGE_S = 1.0


async def live_workers(redis: Redis, stale_s: float) -> list[WorkerHeartbeat]:
    """Workers whose last heartbeat is newer than ``stale_s`` and whose JSON is still there."""
    hostnames = await redis.zrangebyscore(redis_keys.WORKERS_ZSET, time.time() - stale_s, "+inf")
    if not hostnames:
        return []
    names = [as_text(h) for h in hostnames]
    raw = await redis.mget([redis_keys.worker(name) for name in names])
    workers = []
    for name, blob in zip(names, raw, strict=True):
        if blob is None:  # its JSON expired: stopped between two heartbeats
            continue
        try:
            workers.append(WorkerHeartbeat.model_validate_json(blob))
        except ValidationError:
            log.warning("Ignoring a malformed heartbeat from worker %s", name)
    return workers


class LiveWorkerView:
    """The live workers as last read, re-read when older than ``max_age_s`` (one per app).

    GET /tasks and /readyz read the heartbeats afresh on every call and refresh the view too,
    so a client that waited for a worker there sees it on its next POST /jobs.
    """

    def __init__(self, stale_s: float, max_age_s: float = WORKER_VIEW_MAX_AGE_S) -> None:
        self._stale_s = stale_s
        self._max_age_s = max_age_s
        self._workers: list[WorkerHeartbeat] = []
        self._read_at = -math.inf

    async def get(self, redis: Redis) -> list[WorkerHeartbeat]:
        """The view, re-read first when it is older than ``max_age_s``."""
        if time.monotonic() - self._read_at >= self._max_age_s:
            return await self.refresh(redis)
        return self._workers

    async def refresh(self, redis: Redis) -> list[WorkerHeartbeat]:
        """Read the heartbeats now (of concurrent refreshes, the read that started last is kept)."""
        started = time.monotonic()
        workers = await live_workers(redis, self._stale_s)
        if started >= self._read_at:
            self._workers, self._read_at = workers, started
        return workers


def disabled_everywhere(workers: list[WorkerHeartbeat], task: TaskName) -> bool:
    """True when live workers serve the task's queue and every one reports the task disabled.

    With no live worker the job is accepted: it runs when a worker starts. A worker that
    serves the queue but does not report the task (yet) is not counted as refusing it.
    """
    serving = [w for w in workers if w.serves(task)]
    return bool(serving) and all(
        (report := w.tasks.get(task.value)) is not None and not (report.enabled and report.model)
        for w in serving
    )


def task_catalog(workers: list[WorkerHeartbeat]) -> list[TaskInfo]:
    catalog = []
    for task in TaskName:
        models: Counter[tuple[str, str | None, str | None]] = Counter()
        for worker in workers:
            report = worker.runs(task)
            if report is not None and report.model:
                models[(report.model, report.device or worker.device, report.dtype or worker.dtype)] += 1
        catalog.append(
            TaskInfo(
                name=task,
                queue=queue_for(task),
                input_content_type=MULTIPART_MEDIA_TYPE if task in AUDIO_INPUT_TASKS else JSON_MEDIA_TYPE,
                enabled=bool(models),
                models=[
                    TaskModel(model=model, device=device, dtype=dtype, workers=count)
                    for (model, device, dtype), count in sorted(models.items(), key=lambda kv: kv[0][0])
                ],
            )
        )
    return catalog


def ready_workers_per_queue(workers: list[WorkerHeartbeat], queues: list[str]) -> dict[str, int]:
    return {q: sum(1 for w in workers if w.state == "ready" and q in w.queues) for q in queues}
