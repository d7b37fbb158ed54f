"""The job model and its single status vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.tasks import TaskName


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def rank(self) -> int:
        """Status only moves to a higher rank: queued -> running -> terminal."""
        return STATUS_RANK[self]


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
STATUS_RANK = {
    JobStatus.QUEUED: 0,
    JobStatus.RUNNING: 1,
    JobStatus.SUCCEEDED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELED: 2,
}


class ErrorCode(StrEnum):
    """Machine-readable error codes a failed job can carry."""

    INVALID_INPUT = "invalid_input"
    INVALID_AUDIO = "invalid_audio"
    TASK_DISABLED = "task_disabled"
    INPUT_EXPIRED = "input_expired"
    MODEL_ERROR = "model_error"
    OUT_OF_MEMORY = "out_of_memory"
    # Redelivered more than AMULET_MAX_ATTEMPTS times (its worker died or was killed mid-job).
    WORKER_LOST = "worker_lost"
    # Ran longer than its task's AMULET_<TASK>_TIME_LIMIT_S; its output, if any, was discarded.
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"


class JobError(BaseModel):
    code: str = Field(examples=["invalid_audio"])
    message: str = Field(examples=["Could not decode the uploaded audio: ..."])


class JobTimings(BaseModel):
    queue_wait_s: float | None = Field(None, description="Seconds from creation until a worker started it.")
    run_s: float | None = Field(
        None, description="Seconds from start to finish, including waiting for batch company and the device."
    )
    batch_size: int | None = Field(
        None, description="How many jobs shared the forward pass that produced the result (1: ran alone)."
    )


class JobLinks(BaseModel):
    self: str
    result: str | None = Field(None, description="Download link for a binary result (e.g. audio/wav).")


class JobSummary(BaseModel):
    """A job without its result, as GET /jobs lists it (GET /jobs/{id} has the result)."""

    id: str
    task: TaskName
    status: JobStatus
    model: str | None = Field(None, description="The model that ran (or will run) the job, once known.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    error: JobError | None = None
    timings: JobTimings = Field(default_factory=JobTimings)
    attempts: int = 0
    links: JobLinks


class Job(JobSummary):
    """A job as the API returns it."""

    result: Any | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_timestamp(dt: datetime) -> str:
    """Timestamps are stored in Redis as float seconds since the epoch (string)."""
    return repr(dt.timestamp())


def from_timestamp(value: str | bytes | None) -> datetime | None:
    if value in (None, "", b""):
        return None
    return datetime.fromtimestamp(float(value), UTC)
