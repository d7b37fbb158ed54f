"""GET /tasks: every task, its queue and input type, and which models live workers run."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import RequireApiKey
from api.dependencies import GatewayDep
from api.errors import error_responses
from api.schemas import TasksResponse
from api.workers import task_catalog

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
async def list_tasks(gateway: GatewayDep) -> TasksResponse:
    workers = await gateway.worker_view.refresh(gateway.redis)
    return TasksResponse(tasks=task_catalog(workers))
