"""Publishing job ids to Celery without blocking the event loop.

Celery's publisher is synchronous (kombu), so it runs in a worker thread. The message
carries only the job id; the worker reads everything else from Redis.
"""

from __future__ import annotations

import asyncio

import anyio.to_thread
from celery import Celery

from shared.tasks import TaskName, celery_task_name, queue_for

# Bounded retries so a dead broker answers 503 within seconds instead of hanging the request.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}
PUBLISH_TIMEOUT_S = 10.0


class PublishError(Exception):
    pass


class JobPublisher:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    def _send(self, job_id: str, task: TaskName) -> None:
        self._celery.send_task(
            celery_task_name(task),
            args=[job_id],
            task_id=job_id,
            queue=queue_for(task).value,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    async def publish(self, job_id: str, task: TaskName) -> None:
        try:
            # If the timeout fires the thread may still publish later; the caller then
            # marks the job failed, and the worker skips terminal jobs, so nothing runs twice.
            await asyncio.wait_for(
                anyio.to_thread.run_sync(self._send, job_id, task, abandon_on_cancel=True), PUBLISH_TIMEOUT_S
            )
        except Exception as exc:  # kombu raises many types (OperationalError, OSError, ...)
            raise PublishError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._celery.close()
