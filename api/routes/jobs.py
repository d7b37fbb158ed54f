"""The job routes: HTTP in, a call to the job service (api/job_service.py), HTTP out.

POST /jobs, GET /jobs, GET /jobs/{id}, GET /jobs/{id}/result, POST /jobs/{id}/cancel and
DELETE /jobs/{id}. Their OpenAPI text lives in api/openapi.py.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from api import openapi
from api.auth import RequireApiKey, caller_of
from api.dependencies import GatewayDep, gateway_of
from api.idempotency import REPLAYED_HEADER, key_parameter_openapi, read_key
from api.job_requests import read_submission
from api.job_service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from api.job_view import job_url, render_job, render_summary
from api.prefer_header import format_seconds, prefer_wait
from api.schemas import JobList
from shared.jobs import Job, JobStatus
from shared.redis_protocol import CancelOutcome
from shared.tasks import TaskName

router = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    dependencies=[RequireApiKey],
    responses=openapi.error_responses(openapi.AUTH_ERRORS),
)

_EXTENSIONS = {"audio/wav": ".wav", "audio/x-wav": ".wav"}

JobId = Annotated[str, Path(description="The job id returned by POST /jobs.", max_length=200)]


@router.post("", **openapi.create_job_openapi(key_parameter_openapi()))
async def create_job(request: Request, response: Response) -> Job:
    # The hot path: the gateway is read from the app and the headers by hand, not as FastAPI
    # dependencies and parameters, each of which costs CPU per request (api/dependencies.py).
    jobs = gateway_of(request).jobs
    idempotency_key = read_key(request.headers)  # before the body, as for a declared parameter
    wait_s = prefer_wait(request.headers.get("prefer"))
    submission = await read_submission(request, jobs.settings.MAX_UPLOAD_BYTES)
    created = await jobs.create(
        submission, caller_of(request), idempotency_key=idempotency_key, wait_s=wait_s
    )
    if wait_s is not None:
        response.headers["Preference-Applied"] = f"wait={format_seconds(jobs.capped_wait(wait_s))}"
    if created.replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    elif created.record.status.is_terminal():
        response.status_code = 201  # only after a wait: a job is created queued
    response.headers["Location"] = job_url(created.record.id)
    return render_job(created.record)


@router.get("", **openapi.LIST_JOBS)
async def list_jobs(
    request: Request,
    gateway: GatewayDep,
    status: Annotated[list[JobStatus] | None, Query(description="Only jobs in these statuses.")] = None,
    task: Annotated[TaskName | None, Query(description="Only jobs of this task.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Most jobs on the page.")] = (
        DEFAULT_PAGE_SIZE
    ),
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
    ] = None,
) -> JobList:
    page = await gateway.jobs.list_page(
        caller_of(request), statuses=status or (), task=task, limit=limit, cursor=cursor
    )
    return JobList(jobs=[render_summary(r) for r in page.records], next_cursor=page.next_cursor)


@router.get("/{job_id}", **openapi.GET_JOB)
async def get_job(
    job_id: JobId,
    request: Request,
    response: Response,
    gateway: GatewayDep,
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
    from_header = prefer_wait(prefer) if wait is None else None
    requested = wait if wait is not None else from_header
    record = await gateway.jobs.get(job_id, caller_of(request), wait_s=requested or 0.0)
    if from_header is not None:
        response.headers["Preference-Applied"] = (
            f"wait={format_seconds(gateway.jobs.capped_wait(from_header))}"
        )
    return render_job(record)


@router.post("/{job_id}/cancel", **openapi.CANCEL_JOB)
async def cancel_job(job_id: JobId, request: Request, response: Response, gateway: GatewayDep) -> Job:
    """A queued job becomes `canceled` at once (200) and never runs; a running job is asked to
    stop (202) and ends `canceled` where its model allows; a finished job answers 409 `job_finished`."""
    record, outcome = await gateway.jobs.cancel(job_id, caller_of(request))
    if outcome is CancelOutcome.REQUESTED:
        response.status_code = 202
    return render_job(record)


@router.delete("/{job_id}", **openapi.DELETE_JOB)
async def delete_job(job_id: JobId, request: Request, gateway: GatewayDep) -> Response:
    """Delete the job, finished or not: an unfinished job is canceled first (a running one is
    stopped, and its late outcome is dropped), then its record, input and result are removed and
    it answers 404. To cancel and keep the record, use `POST /jobs/{job_id}/cancel`."""
    await gateway.jobs.delete(job_id, caller_of(request))
    return Response(status_code=204)


@router.get("/{job_id}/result", response_class=Response, **openapi.GET_RESULT)
async def get_result(job_id: JobId, request: Request, gateway: GatewayDep) -> Response:
    found = await gateway.jobs.result_file(job_id, caller_of(request))
    filename = download_name(job_id, found.content_type)
    return Response(
        found.content,
        media_type=found.content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def download_name(job_id: str, content_type: str) -> str:
    # mimetypes only knows audio/x-wav; and the id is sanitised because it goes into a header.
    extension = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    return re.sub(r"[^A-Za-z0-9._-]", "_", job_id) + extension
