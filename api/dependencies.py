"""FastAPI dependencies: everything a route needs comes from the app's state, set up by
the lifespan in api/main.py, never from module globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from api.job_store import JobStore
from api.publishing import JobPublisher
from api.waiting import JobDoneListener
from shared.settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_job_store(request: Request) -> JobStore:
    return request.app.state.job_store


def get_publisher(request: Request) -> JobPublisher:
    return request.app.state.publisher


def get_listener(request: Request) -> JobDoneListener:
    return request.app.state.listener


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
PublisherDep = Annotated[JobPublisher, Depends(get_publisher)]
ListenerDep = Annotated[JobDoneListener, Depends(get_listener)]
