"""FastAPI dependencies: everything a route needs comes from the app's state, set up by
the lifespan in api/main.py, never from module globals.

They are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
the thread pool, a thread hop per dependency per request (about 15% of the event loop's time
per POST /jobs in a py-spy profile), for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from api.job_store import JobStore
from api.publishing import JobPublisher
from api.waiting import JobDoneListener
from api.workers import LiveWorkerView
from shared.settings import ApiSettings


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_job_store(request: Request) -> JobStore:
    return request.app.state.job_store


async def get_publisher(request: Request) -> JobPublisher:
    return request.app.state.publisher


async def get_listener(request: Request) -> JobDoneListener:
    return request.app.state.listener


async def get_worker_view(request: Request) -> LiveWorkerView:
    return request.app.state.worker_view


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
PublisherDep = Annotated[JobPublisher, Depends(get_publisher)]
ListenerDep = Annotated[JobDoneListener, Depends(get_listener)]
WorkerViewDep = Annotated[LiveWorkerView, Depends(get_worker_view)]
