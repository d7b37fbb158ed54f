"""GET /tasks: every task, its queue and input type, and which models live workers run."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import RequireApiKey
from api.dependencies import GatewayDep
from api.live_workers import task_catalog
from api.openapi import AUTH_ERRORS, REDIS_ERRORS, error_responses
from api.schemas import TasksResponse

router = APIRouter(
    prefix="/tasks", tags=["tasks"], dependencies=[RequireApiKey], responses=error_responses(AUTH_ERRORS)
)


@router.get(
    "",
    response_model=TasksResponse,
    summary="List tasks and the models serving them",
    operation_id="list_tasks",
    responses=error_responses({503: REDIS_ERRORS}),
)
async def list_tasks(gateway: GatewayDep) -> TasksResponse:
    workers = await gateway.worker_view.refresh(gateway.redis)
    return TasksResponse(tasks=task_catalog(workers))
