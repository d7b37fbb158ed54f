"""The Celery configuration both sides share.

The gateway only publishes (``send_task`` by name); the worker registers the tasks.
Results are not stored by Celery: job state lives in our own Redis records
(shared/job_record.py), so an unknown id is a 404 instead of Celery's eternal PENDING.
"""

from __future__ import annotations

from celery import Celery

from shared.settings import CommonSettings
from shared.tasks import TaskName, celery_task_name, queue_for


def make_celery(settings: CommonSettings, main: str = "amulet") -> Celery:
    app = Celery(main, broker=settings.REDIS_URL)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # Long jobs: acknowledge after the job ran, take one message at a time, so a
        # worker that dies mid-job leaves the message to be delivered again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_routes={celery_task_name(t): {"queue": queue_for(t).value} for t in TaskName},
        task_default_queue="text",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app
