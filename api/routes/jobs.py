"""POST /jobs, GET /jobs/{id}, GET /jobs/{id}/result."""

from __future__ import annotations

import logging
import mimetypes
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from api.dependencies import JobStoreDep, ListenerDep, PublisherDep, RedisDep, SettingsDep
from api.errors import ApiError, error_responses
from api.job_requests import read_submission
from api.job_store import JobStore
from api.job_view import job_url, render_job
from api.openapi import job_request_openapi
from api.preferences import format_seconds, prefer_wait
from api.publishing import PublishError
from api.waiting import wait_until_terminal
from api.workers import disabled_everywhere, live_workers
from shared.job_record import JobRecord
from shared.jobs import Job, JobStatus
from shared.tasks import BINARY_RESULT_TASKS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"])

_EXTENSIONS = {"audio/wav": ".wav", "audio/x-wav": ".wav"}

JobId = Annotated[str, Path(description="The job id returned by POST /jobs.", max_length=200)]


def _not_found(job_id: str) -> ApiError:
    return ApiError(404, "job_not_found", f"No job {job_id!r}: it never existed or has expired.")


async def _load_or_404(store: JobStore, job_id: str) -> JobRecord:
    record = await store.load(job_id)
    if record is None:
        raise _not_found(job_id)
    return record


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Create a job",
    operation_id="create_job",
    responses={
        202: {
            "description": "Accepted: the job is queued.",
            "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}},
            "links": {
                "GetJob": {
                    "operationId": "get_job",
                    "parameters": {"job_id": "$response.body#/id"},
                    "description": "Poll or wait for the job.",
                }
            },
        },
        **error_responses(413, 415, 422, 503),
    },
    openapi_extra=job_request_openapi(),
)
async def create_job(
    request: Request,
    response: Response,
    settings: SettingsDep,
    redis: RedisDep,
    store: JobStoreDep,
    publisher: PublisherDep,
) -> Job:
    submission = await read_submission(request, settings.MAX_UPLOAD_BYTES)
    workers = await live_workers(redis, settings.WORKER_STALE_S)
    if disabled_everywhere(workers, submission.task):
        raise ApiError(
            422,
            "task_disabled",
            f"Task {submission.task.value!r} is disabled: no live worker has a model configured for it.",
        )
    job_id = uuid.uuid4().hex
    record = await store.create(job_id, submission)
    try:
        await publisher.publish(job_id, submission.task)
    except PublishError as exc:
        log.error("Could not publish job %s: %s", job_id, exc)
        # Never leave a queued job that nobody will run: finish it as failed.
        await store.fail_unpublished(job_id, str(exc))
        raise ApiError(
            503,
            "redis_unavailable",
            "The job could not be queued because the broker is unreachable; retry later.",
            details={"job_id": job_id},
            headers={"Retry-After": "5"},
        ) from exc
    response.headers["Location"] = job_url(job_id)
    return render_job(record)


@router.get(
    "/{job_id}",
    response_model=Job,
    summary="Get a job, optionally waiting for it to finish",
    operation_id="get_job",
    responses={
        200: {
            "description": "The job as it is now (terminal, or the wait ended).",
            "headers": {
                "Preference-Applied": {
                    "description": "wait=N when the Prefer: wait=N header was honoured (N after the cap).",
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(404, 422, 503),
    },
)
async def get_job(
    job_id: JobId,
    response: Response,
    settings: SettingsDep,
    store: JobStoreDep,
    listener: ListenerDep,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            allow_inf_nan=False,
            description="Seconds to wait for the job to finish (capped by AMULET_MAX_WAIT_S).",
        ),
    ] = None,
    prefer: Annotated[
        str | None,
        Header(description="RFC 7240, e.g. `wait=30`: the same as ?wait=30 when no query is given."),
    ] = None,
) -> Job:
    from_header = wait is None and prefer_wait(prefer) is not None
    requested = wait if wait is not None else prefer_wait(prefer)
    timeout = min(requested or 0.0, settings.MAX_WAIT_S)
    if timeout > 0:
        record = await wait_until_terminal(listener, job_id, store.load, timeout)
    else:
        record = await store.load(job_id)
    if record is None:
        raise _not_found(job_id)
    if from_header:
        response.headers["Preference-Applied"] = f"wait={format_seconds(timeout)}"
    return render_job(record)


@router.get(
    "/{job_id}/result",
    response_class=Response,
    summary="Download a binary result (synthesize: audio/wav)",
    operation_id="get_job_result",
    responses={
        200: {
            "description": "The result file.",
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404, 409, 422, 503),
    },
)
async def get_result(job_id: JobId, store: JobStoreDep) -> Response:
    record = await _load_or_404(store, job_id)
    if record.task not in BINARY_RESULT_TASKS:
        raise ApiError(
            404,
            "no_binary_result",
            f"Task {record.task.value!r} has a JSON result: read 'result' on GET /jobs/{job_id}.",
        )
    if record.status is not JobStatus.SUCCEEDED:
        raise ApiError(
            409,
            "result_not_ready",
            f"The job is {record.status.value}; the result exists once it has succeeded.",
            details={"status": record.status.value},
        )
    blob = await store.load_result_blob(job_id)
    if blob is None:
        raise ApiError(404, "job_not_found", f"The result of job {job_id!r} has expired.")
    content_type = record.result_content_type or "application/octet-stream"
    return Response(
        blob,
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{download_name(record.id, content_type)}"'},
    )


def download_name(job_id: str, content_type: str) -> str:
    # mimetypes only knows audio/x-wav; and the id is sanitised because it goes into a header.
    extension = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    return re.sub(r"[^A-Za-z0-9._-]", "_", job_id) + extension
