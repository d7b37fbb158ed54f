"""The worker's Celery app: the shared configuration plus one task per TaskName.

Each task only carries a job id and hands it to the JobRunner built at start-up (models
loaded, registry filled); the runner is passed in rather than imported, so nothing here
loads a model at import time.
"""

from __future__ import annotations

from celery import Celery

from shared.celery_app import make_celery
from shared.settings import WorkerSettings
from shared.tasks import TaskName, celery_task_name
from worker.runner import JobRunner


def create_worker_app(settings: WorkerSettings, runner: JobRunner) -> Celery:
    app = make_celery(settings, main="amulet-worker")
    for task in TaskName:
        _register(app, task, runner)
    return app


def _register(app: Celery, task: TaskName, runner: JobRunner) -> None:
    def run_job(job_id: str) -> None:
        runner.run(job_id, task)

    run_job.__name__ = f"run_{task.value}"
    # The runner records every outcome in the job itself; Celery must not retry or store results.
    app.task(name=celery_task_name(task), ignore_result=True, acks_late=True)(run_job)
