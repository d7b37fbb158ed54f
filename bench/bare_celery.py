"""The baseline for workload 2: a bare Celery app with a no-op task on the same Redis (broker and
result backend), run by a threads-pool worker; the client does ``noop.delay().get()``.

Start the worker with ``celery -A bench.bare_celery worker --pool=threads -c 1`` and
BENCH_REDIS_URL set (this module is only a Celery app entry point, so it reads the environment)."""

from __future__ import annotations

import os

from celery import Celery


def make_app(redis_url: str) -> Celery:
    app = Celery("bench-bare", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_default_queue="bench-bare",
    )

    @app.task(name="bench.noop", shared=False)  # make_app runs twice in one process (client side)
    def noop() -> str:
        return "ok"

    return app


app = make_app(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
