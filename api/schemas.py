"""Response bodies of the gateway that are not the job itself (shared.jobs.Job).

Declared as models so the OpenAPI schema describes every answer exactly; schemathesis
checks each documented response against it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.jobs import JobSummary
from shared.tasks import Queue, TaskName


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unknown_task"], description="Machine-readable error code (see docs/api.md).")
    message: str = Field(description="What went wrong and what to do about it.")
    details: Any | None = Field(None, description="Extra data, e.g. pydantic's errors or available tasks.")


class ErrorResponse(BaseModel):
    """Every error answer has this body."""

    error: ErrorDetail


class JobList(BaseModel):
    """A page of GET /jobs."""

    jobs: list[JobSummary] = Field(description="Newest first, without their results.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: there is none.")


class TaskModel(BaseModel):
    model: str
    device: str | None = None
    dtype: str | None = None
    workers: int = Field(description="How many live workers serve the task with this model.")


class TaskInfo(BaseModel):
    name: TaskName
    queue: Queue
    input_content_type: Literal["application/json", "multipart/form-data"]
    enabled: bool = Field(description="At least one live worker serves the task with a model.")
    models: list[TaskModel]


class TasksResponse(BaseModel):
    tasks: list[TaskInfo]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class QueueReadiness(BaseModel):
    ready_workers: int


class ReadyResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    redis: Literal["ok", "unreachable"]
    queues: dict[str, QueueReadiness]
    problems: list[str]
