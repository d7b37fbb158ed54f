"""The gateway's app factory.

Run it with ``python -m api`` or
``uvicorn --factory api.main:create_app --host 0.0.0.0 --port 8000``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from api.auth import KeyRing
from api.dependencies import Gateway
from api.errors import install_error_handlers
from api.job_service import JobService
from api.live_workers import LiveWorkerView
from api.openapi import install_request_schemas
from api.publishing import JobPublisher
from api.routes import health, jobs, tasks
from api.waiting import JobDoneListener
from shared.celery_app import make_celery
from shared.settings import ApiSettings, api_settings

log = logging.getLogger(__name__)

# Fail fast when Redis is gone (503 instead of a hung request). The read timeout is
# generous because a single command may move a whole audio upload.
REDIS_CONNECT_TIMEOUT_S = 2.0
REDIS_SOCKET_TIMEOUT_S = 15.0

DESCRIPTION = """Speech and text inference as asynchronous jobs.

`POST /jobs` queues a job and answers `202` with its id; `GET /jobs/{id}?wait=30` waits for it.
Every error has the body `{"error": {"code", "message", "details"}}` (see docs/api.md).
"""


def _configure_logging(level: str) -> None:
    # Under uvicorn only its own loggers have handlers; give ours one without
    # overriding a configuration someone else installed.
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("api").setLevel(level)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    # Nothing here talks to Redis yet: the gateway starts (and /readyz explains) while Redis is down.
    # A blocking pool: a burst of more concurrent requests than connections waits for a free one
    # (redis-py's default pool refuses them at once, which clients would see as 503s).
    pool = BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.REDIS_POOL_TIMEOUT_S,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
    )
    redis = Redis(connection_pool=pool)
    publisher = JobPublisher(make_celery(settings, main="amulet-api"))
    listener = JobDoneListener(settings.REDIS_URL)
    worker_view = LiveWorkerView(settings.WORKER_STALE_S)
    app.state.gateway = Gateway(
        settings=settings,
        redis=redis,
        jobs=JobService(settings, redis, publisher, listener, worker_view),
        worker_view=worker_view,
    )
    listener.start()
    # Everything built so far (the Celery app, FastAPI's routes, pydantic's validators, these clients)
    # lives as long as the process. Frozen, the collector's older generations stop traversing it
    # again and again under load: +8% POST /jobs per second (workload 1). Collected first, so no
    # startup garbage is kept for good. Ref: https://docs.python.org/3/library/gc.html#gc.freeze
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await listener.stop()
        await anyio.to_thread.run_sync(publisher.close)
        await redis.aclose()
        await pool.aclose()


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or api_settings()
    _configure_logging(settings.LOG_LEVEL)
    app = FastAPI(
        title="Amulet",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keyring = KeyRing(settings)
    install_error_handlers(app)
    app.include_router(jobs.router)
    app.include_router(tasks.router)
    app.include_router(health.router)
    install_request_schemas(app)
    return app
