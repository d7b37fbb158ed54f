"""Rendering a stored JobRecord as the API's job object (shared.jobs.Job), links included.

The gateway is the only one that knows its own URLs: the worker stores results, and the links to
them (``links``, and ``result.url`` of a binary result) are made here.
"""

from __future__ import annotations

from typing import Any

from shared.job_record import JobRecord
from shared.jobs import (
    ErrorCode,
    Job,
    JobError,
    JobLinks,
    JobStatus,
    JobSummary,
    JobTimings,
    from_timestamp,
)
from shared.tasks import BINARY_RESULT_TASKS


def job_url(job_id: str) -> str:
    return f"/jobs/{job_id}"


def result_url(job_id: str) -> str:
    return f"/jobs/{job_id}/result"


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round(max(float(end) - float(start), 0.0), 6)


def _error(raw: object) -> JobError | None:
    if raw is None:
        return None
    if isinstance(raw, dict) and isinstance(raw.get("code"), str) and isinstance(raw.get("message"), str):
        return JobError(code=raw["code"], message=raw["message"])
    # A malformed error written by a worker still shows up, rather than breaking the job view.
    return JobError(code=ErrorCode.INTERNAL_ERROR.value, message=str(raw))


def _has_download(record: JobRecord) -> bool:
    return record.status is JobStatus.SUCCEEDED and record.task in BINARY_RESULT_TASKS


def _fields(record: JobRecord) -> dict[str, Any]:
    download = result_url(record.id) if _has_download(record) else None
    return {
        "id": record.id,
        "task": record.task,
        "status": record.status,
        "model": record.model,
        "created_at": from_timestamp(record.created_at),
        "started_at": from_timestamp(record.started_at),
        "finished_at": from_timestamp(record.finished_at),
        "params": record.params,
        "error": _error(record.error),
        "timings": JobTimings(
            queue_wait_s=_seconds_between(record.created_at, record.started_at),
            run_s=_seconds_between(record.started_at, record.finished_at),
            batch_size=record.batch_size,
        ),
        "attempts": record.attempts,
        "links": JobLinks(self=job_url(record.id), result=download),
    }


def render_job(record: JobRecord) -> Job:
    result = record.result
    if _has_download(record) and isinstance(result, dict):
        result = {**result, "url": result_url(record.id)}
    return Job(**_fields(record), result=result)


def render_summary(record: JobRecord) -> JobSummary:
    return JobSummary(**_fields(record))
