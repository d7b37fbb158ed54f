"""POST /jobs, GET /jobs/{id}, GET /jobs/{id}/result, and cancel (POST /jobs/{id}/cancel,
DELETE /jobs/{id})."""

from __future__ import annotations

import logging
import mimetypes
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from redis.exceptions import RedisError

from api.auth import RequireApiKey
from api.backpressure import queue_full
from api.dependencies import Gateway, GatewayDep, gateway_of
from api.errors import ApiError, error_responses
from api.idempotency import (
    REPLAYED_HEADER,
    IdempotencyClaim,
    StoredClaim,
    claim_for,
    ensure_same_request,
    key_parameter_openapi,
    read_key,
    stored_claim,
)
from api.job_requests import JobSubmission, read_submission
from api.job_store import CancelOutcome, JobStore, QueueFull
from api.job_view import job_url, render_job
from api.openapi import job_request_openapi
from api.preferences import format_seconds, prefer_wait
from api.waiting import wait_until_terminal
from api.workers import disabled_everywhere
from shared.job_record import JobRecord
from shared.jobs import Job, JobStatus
from shared.tasks import BINARY_RESULT_TASKS, queue_for

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/jobs", tags=["jobs"], dependencies=[RequireApiKey], responses=error_responses(401, 403)
)

_EXTENSIONS = {"audio/wav": ".wav", "audio/x-wav": ".wav"}

JobId = Annotated[str, Path(description="The job id returned by POST /jobs.", max_length=200)]


def _not_found(job_id: str) -> ApiError:
    return ApiError(404, "job_not_found", f"No job {job_id!r}: it never existed or has expired.")


async def _load_or_404(store: JobStore, job_id: str) -> JobRecord:
    record = await store.load(job_id)
    if record is None:
        raise _not_found(job_id)
    return record


_REPLAY_HEADERS = {
    REPLAYED_HEADER: {
        "description": "`true`: the job was created by an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "The job's URL.", "schema": {"type": "string"}},
}
_GET_JOB_LINK = {
    "GetJob": {
        "operationId": "get_job",
        "parameters": {"job_id": "$response.body#/id"},
        "description": "Poll or wait for the job.",
    }
}


_PREFERENCE_APPLIED = {
    "description": "wait=N when the Prefer: wait=N header was honoured (N after the cap).",
    "schema": {"type": "string"},
}
_LOCATION = {"description": "The job's URL.", "schema": {"type": "string"}}
# POST /jobs reads Prefer itself, like Idempotency-Key (see api/idempotency.py read_key): a
# declared header parameter costs FastAPI CPU on every request, header or not.
_POST_PREFER_DESCRIPTION = (
    "RFC 7240 `wait=N`: after creating the job, wait up to N seconds (capped by AMULET_MAX_WAIT_S) for "
    "it to finish and answer with the job as it is then: 201 when it finished, 202 when it is still "
    "queued or running. One request instead of POST then GET ?wait=N, for a short job."
)
_POST_PREFER_PARAMETER = {
    "name": "prefer",
    "in": "header",
    "required": False,
    "description": _POST_PREFER_DESCRIPTION,
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": _POST_PREFER_DESCRIPTION,
        "title": "Prefer",
    },
}


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Create a job, optionally waiting for it to finish",
    operation_id="create_job",
    responses={
        202: {
            "description": "Accepted: the job is queued (after a `Prefer: wait`: still queued or running).",
            "headers": {"Location": _LOCATION, "Preference-Applied": _PREFERENCE_APPLIED},
            "links": _GET_JOB_LINK,
        },
        201: {
            "model": Job,
            "description": "With `Prefer: wait=N` only: the job was created and finished (succeeded, failed "
            "or canceled) within the wait; the body is the finished job, result included.",
            "headers": {"Location": _LOCATION, "Preference-Applied": _PREFERENCE_APPLIED},
            "links": _GET_JOB_LINK,
        },
        200: {
            "model": Job,
            "description": "A replay: an earlier request with the same Idempotency-Key and body "
            "created this job (in whatever state it is now, or once the `Prefer: wait` ends).",
            "headers": {**_REPLAY_HEADERS, "Preference-Applied": _PREFERENCE_APPLIED},
            "links": _GET_JOB_LINK,
        },
        **error_responses(413, 415, 422, 429, 503),
    },
    openapi_extra={**job_request_openapi(), "parameters": [key_parameter_openapi(), _POST_PREFER_PARAMETER]},
)
async def create_job(
    request: Request,
    response: Response,
) -> Job:
    gateway = gateway_of(request)
    settings = gateway.settings
    idempotency_key = read_key(request.headers)  # before the body, as for a declared parameter
    requested_wait = prefer_wait(request.headers.get("prefer"))
    submission = await read_submission(request, settings.MAX_UPLOAD_BYTES)
    claim = claim_for(idempotency_key, submission, settings.IDEMPOTENCY_TTL_S)
    record, replayed = await _create_or_replay(gateway, submission, claim)
    if requested_wait is not None:
        timeout = min(requested_wait, settings.MAX_WAIT_S)
        record = await _wait_after_create(gateway, record, timeout)
        response.headers["Preference-Applied"] = f"wait={format_seconds(timeout)}"
    if replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    elif record.status.is_terminal():
        response.status_code = 201  # only after a wait: a job is created queued
    response.headers["Location"] = job_url(record.id)
    return render_job(record)


async def _create_or_replay(
    gateway: Gateway, submission: JobSubmission, claim: IdempotencyClaim | None
) -> tuple[JobRecord, bool]:
    """The new job, or (True) the job an earlier request with the same Idempotency-Key created."""
    settings, redis, store = gateway.settings, gateway.redis, gateway.store
    if claim is not None:
        # A replay answers with its job even when the queue is full or the task now disabled.
        earlier = await stored_claim(redis, claim)
        if earlier is not None and (replay := await _replay(store, claim, earlier)) is not None:
            return replay, True
    if disabled_everywhere(await gateway.worker_view.get(redis), submission.task):
        raise ApiError(
            422,
            "task_disabled",
            f"Task {submission.task.value!r} is disabled: no live worker has a model configured for it.",
        )
    job_id = uuid.uuid4().hex
    message = gateway.publisher.message(job_id, submission.task)
    # Redis errors (unreachable, out of memory) reach the app's handler (503): the record and its
    # message are written together or not at all, so no job is left queued that nobody will run.
    created = await store.create(job_id, submission, message, settings.MAX_QUEUE_DEPTH, claim)
    while isinstance(created, StoredClaim):
        # A concurrent request with the same key won the race: answer with its job.
        assert claim is not None
        replay = await _replay(store, claim, created)
        if replay is not None:
            return replay, True
        # Its job expired in the meantime, which frees the key.
        created = await store.create(job_id, submission, message, settings.MAX_QUEUE_DEPTH, claim)
    if isinstance(created, QueueFull):
        raise queue_full(queue_for(submission.task), created.depth, settings.MAX_QUEUE_DEPTH)
    return created, False


async def _replay(store: JobStore, claim: IdempotencyClaim, earlier: StoredClaim) -> JobRecord | None:
    """The earlier request's job, or None when it has expired."""
    ensure_same_request(claim, earlier)
    return await store.load(earlier.job_id)


async def _wait_after_create(gateway: Gateway, record: JobRecord, timeout: float) -> JobRecord:
    """The job once it is terminal or ``timeout`` has passed.

    The job exists by now, so a failed wait must not turn into an error: a client that saw a 503
    would retry and create the job again. Redis failing here answers with the job as it was.
    """
    if timeout <= 0 or record.status.is_terminal():
        return record
    try:
        waited = await wait_until_terminal(gateway.listener, record.id, gateway.store.load, timeout)
    except RedisError as exc:
        log.warning("Waiting for new job %s failed (%r): answering with it as created", record.id, exc)
        return record
    return waited if waited is not None else record


@router.get(
    "/{job_id}",
    response_model=Job,
    summary="Get a job, optionally waiting for it to finish",
    operation_id="get_job",
    responses={
        200: {
            "description": "The job as it is now (terminal, or the wait ended).",
            "headers": {"Preference-Applied": _PREFERENCE_APPLIED},
        },
        **error_responses(404, 422, 503),
    },
)
async def get_job(
    job_id: JobId,
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
    from_header = wait is None and prefer_wait(prefer) is not None
    requested = wait if wait is not None else prefer_wait(prefer)
    timeout = min(requested or 0.0, gateway.settings.MAX_WAIT_S)
    if timeout > 0:
        record = await wait_until_terminal(gateway.listener, job_id, gateway.store.load, timeout)
    else:
        record = await gateway.store.load(job_id)
    if record is None:
        raise _not_found(job_id)
    if from_header:
        response.headers["Preference-Applied"] = f"wait={format_seconds(timeout)}"
    return render_job(record)


_CANCEL_RESPONSES: dict[int | str, dict] = {
    200: {"description": "The job was queued and is now `canceled`; it will never run."},
    202: {
        "model": Job,
        "description": "The job is running: cancellation was requested and the job ends `canceled` at "
        "the next point its model allows (until then it shows `running`).",
    },
    **error_responses(404, 409, 422, 503),
}


async def _cancel(job_id: str, response: Response, store: JobStore) -> Job:
    outcome, status = await store.cancel(job_id)
    if outcome is CancelOutcome.NOT_FOUND:
        raise _not_found(job_id)
    if outcome is CancelOutcome.ALREADY_FINISHED:
        raise ApiError(
            409,
            "job_finished",
            f"The job is already {status}; only queued or running jobs can be canceled.",
            details={"status": status},
        )
    if outcome is CancelOutcome.REQUESTED:
        response.status_code = 202
    record = await _load_or_404(store, job_id)
    return render_job(record)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    summary="Cancel a job",
    operation_id="cancel_job",
    responses=_CANCEL_RESPONSES,
)
async def cancel_job(job_id: JobId, response: Response, gateway: GatewayDep) -> Job:
    """A queued job becomes `canceled` at once (200) and never runs; a running job is asked to
    stop (202) and ends `canceled` where its model allows; a finished job answers 409 `job_finished`."""
    return await _cancel(job_id, response, gateway.store)


@router.delete(
    "/{job_id}",
    response_model=Job,
    summary="Cancel a job (the same as POST /jobs/{id}/cancel)",
    operation_id="delete_job",
    responses=_CANCEL_RESPONSES,
)
async def delete_job(job_id: JobId, response: Response, gateway: GatewayDep) -> Job:
    """The same as `POST /jobs/{job_id}/cancel`. The job record stays readable until it expires."""
    return await _cancel(job_id, response, gateway.store)


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
async def get_result(job_id: JobId, gateway: GatewayDep) -> Response:
    store = gateway.store
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
