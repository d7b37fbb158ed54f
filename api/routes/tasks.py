"""GET /tasks: every task, its queue and input type, and which models live workers run."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import RequireApiKey
from api.dependencies import RedisDep, SettingsDep
from api.errors import error_responses
from api.schemas import TasksResponse
from api.workers import live_workers, task_catalog

router = APIRouter(
    prefix="/tasks", tags=["tasks"], dependencies=[RequireApiKey], responses=error_responses(401, 403)
)


@router.get(
    "",
    response_model=TasksResponse,
    summary="List tasks and the models serving them",
    operation_id="list_tasks",
    responses=error_responses(503),
)
async def list_tasks(settings: SettingsDep, redis: RedisDep) -> TasksResponse:
    workers = await live_workers(redis, settings.WORKER_STALE_S)
    return TasksResponse(tasks=task_catalog(workers))
