"""What the gateway does with jobs, whichever HTTP surface asks: create (or replay), wait, read,
cancel, delete, list.

Routes (api/routes/jobs.py) turn HTTP into these calls and the results back into HTTP; a second
surface (an OpenAI-compatible facade) calls the same methods. Every method takes the Caller
(api/auth.py): a job another key created answers as if it did not exist. Failures are ApiErrors
(status, code, message), which each surface renders in its own error shape. Redis is reached
through the scripts of shared/redis_protocol.py and plain reads of the keys it names.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.auth import Caller
from api.backpressure import queue_full
from api.errors import ApiError, ApiErrorCode
from api.idempotency import claim_for, ensure_same_request, stored_claim
from api.job_requests import JobSubmission
from api.live_workers import LiveWorkerView, disabled_everywhere
from api.publishing import JobPublisher
from api.waiting import JobDoneListener, wait_until_terminal
from shared import redis_keys
from shared.job_record import JobRecord
from shared.jobs import JobStatus, to_timestamp, utcnow
from shared.redis_protocol import (
    CancelOutcome,
    IdempotencyClaim,
    KeyInUse,
    QueueFull,
    StoredClaim,
    as_text,
    cancel_job,
    create_job,
    delete_job,
    run_async,
)
from shared.settings import ApiSettings
from shared.tasks import BINARY_RESULT_TASKS, TaskName, queue_for

log = logging.getLogger(__name__)

# GET /jobs: what one page may hold, and how many index entries one request reads at most (a filter
# that matches few jobs answers a short page with a cursor rather than reading the whole index).
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_SCANNED_PER_PAGE = 1_000
_SCAN_BATCH = 100
# The record fields a listed job shows (not its result or input, which can be large).
_SUMMARY_FIELDS = (
    "id",
    "task",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "params",
    "error",
    "attempts",
    "model",
    "batch_size",
    "owner",
)


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, ApiErrorCode.JOB_NOT_FOUND, f"No job {job_id!r}: it never existed or has expired.")


@dataclass(frozen=True)
class CreatedJob:
    record: JobRecord
    # The job an earlier request with the same Idempotency-Key created.
    replayed: bool


@dataclass(frozen=True)
class ResultFile:
    record: JobRecord
    content: bytes
    content_type: str


@dataclass(frozen=True)
class JobPage:
    records: list[JobRecord]
    # Where the next page starts; None: there is none. A page may be shorter than asked and
    # still have a next one (filters that match few jobs).
    next_cursor: str | None


class JobService:
    """One per app (the lifespan in api/main.py builds it); every method is safe to call concurrently."""

    def __init__(
        self,
        settings: ApiSettings,
        redis: Redis,
        publisher: JobPublisher,
        listener: JobDoneListener,
        worker_view: LiveWorkerView,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.publisher = publisher
        self.listener = listener
        self.worker_view = worker_view

    def capped_wait(self, requested_s: float) -> float:
        return min(requested_s, self.settings.MAX_WAIT_S)

    # -- reading ------------------------------------------------------------------------------
    async def load(self, job_id: str) -> JobRecord | None:
        fields = await self.redis.hgetall(redis_keys.job(job_id))
        return JobRecord.from_hash(fields) if fields else None

    async def _visible(self, job_id: str, caller: Caller) -> JobRecord:
        record = await self.load(job_id)
        if record is None or not caller.may_see(record):
            raise job_not_found(job_id)
        return record

    async def get(self, job_id: str, caller: Caller, wait_s: float = 0.0) -> JobRecord:
        """The job; with ``wait_s`` (capped), once it is terminal or the wait is over."""
        record = await self._visible(job_id, caller)
        timeout = self.capped_wait(wait_s)
        if timeout > 0 and not record.status.is_terminal():
            waited = await wait_until_terminal(self.listener, job_id, self.load, timeout)
            if waited is None:  # deleted while we waited
                raise job_not_found(job_id)
            record = waited
        return record

    async def result_file(self, job_id: str, caller: Caller) -> ResultFile:
        record = await self._visible(job_id, caller)
        if record.task not in BINARY_RESULT_TASKS:
            raise ApiError(
                404,
                ApiErrorCode.NO_BINARY_RESULT,
                f"Task {record.task.value!r} has a JSON result: read 'result' on GET /jobs/{job_id}.",
            )
        if record.status is not JobStatus.SUCCEEDED:
            raise ApiError(
                409,
                ApiErrorCode.RESULT_NOT_READY,
                f"The job is {record.status.value}; the result exists once it has succeeded.",
                details={"status": record.status.value},
            )
        # bytes: the gateway's client does not decode answers.
        blob = cast(bytes | None, await self.redis.get(redis_keys.job_result_blob(job_id)))
        if blob is None:
            raise ApiError(404, ApiErrorCode.JOB_NOT_FOUND, f"The result of job {job_id!r} has expired.")
        return ResultFile(record, blob, record.result_content_type or "application/octet-stream")

    # -- creating -----------------------------------------------------------------------------
    async def create(
        self,
        submission: JobSubmission,
        caller: Caller,
        *,
        idempotency_key: str | None = None,
        wait_s: float | None = None,
    ) -> CreatedJob:
        """Create and queue a job (or answer with the one an earlier request with the same
        Idempotency-Key created); with ``wait_s`` (capped), answer once it is terminal or the wait
        is over."""
        claim = claim_for(idempotency_key, caller.owner, submission, self.settings.IDEMPOTENCY_TTL_S)
        created = await self._create_or_replay(submission, caller, claim)
        if wait_s is not None:
            created = CreatedJob(await self._wait_after_create(created.record, wait_s), created.replayed)
        return created

    async def _create_or_replay(
        self, submission: JobSubmission, caller: Caller, claim: IdempotencyClaim | None
    ) -> CreatedJob:
        settings = self.settings
        if claim is not None:
            # A replay answers with its job even when the queue is full or the task now disabled.
            earlier = await stored_claim(self.redis, claim)
            if earlier is not None and (replay := await self._replay(claim, earlier)) is not None:
                return CreatedJob(replay, replayed=True)
        if disabled_everywhere(await self.worker_view.get(self.redis), submission.task):
            raise ApiError(
                422,
                ApiErrorCode.TASK_DISABLED,
                f"Task {submission.task.value!r} is disabled: no live worker has a model configured for it.",
            )
        job_id = uuid.uuid4().hex
        message = self.publisher.message(job_id, submission.task)
        record = JobRecord(
            id=job_id,
            task=submission.task,
            status=JobStatus.QUEUED,
            created_at=to_timestamp(utcnow()),
            params=submission.params,
            input=submission.input,
            input_filename=submission.input_filename,
            owner=caller.owner,
        )
        call = create_job(
            record=record,
            queue_lists=message.lists,
            message=message.body,
            max_queue_depth=settings.MAX_QUEUE_DEPTH,
            job_ttl_s=settings.JOB_TTL_S,
            index_ttl_s=settings.JOB_TTL_S + settings.RESULT_TTL_S,
            input_blob=submission.audio,
            input_ttl_s=settings.INPUT_TTL_S,
            claim=claim,
        )
        # Redis errors (unreachable, out of memory) reach the app's handler (503): the record and its
        # message are written together or not at all, so no job is left queued that nobody will run.
        result = await run_async(self.redis, call)
        while isinstance(result, KeyInUse):
            # A concurrent request with the same key won the race: answer with its job.
            assert claim is not None
            replay = await self._replay(claim, result.stored)
            if replay is not None:
                return CreatedJob(replay, replayed=True)
            # Its job expired (or was deleted) in the meantime, which frees the key.
            result = await run_async(self.redis, call)
        if isinstance(result, QueueFull):
            raise queue_full(queue_for(submission.task), result.depth, settings.MAX_QUEUE_DEPTH)
        return CreatedJob(record, replayed=False)

    async def _replay(self, claim: IdempotencyClaim, earlier: StoredClaim) -> JobRecord | None:
        """The earlier request's job, or None when it has expired or was deleted."""
        ensure_same_request(claim, earlier)
        return await self.load(earlier.job_id)

    async def _wait_after_create(self, record: JobRecord, wait_s: float) -> JobRecord:
        """The job once it is terminal or the wait is over.

        The job exists by now, so a failed wait must not turn into an error: a client that saw a 503
        would retry and create the job again. Redis failing here answers with the job as it was.
        """
        timeout = self.capped_wait(wait_s)
        if timeout <= 0 or record.status.is_terminal():
            return record
        try:
            waited = await wait_until_terminal(self.listener, record.id, self.load, timeout)
        except RedisError as exc:
            log.warning("Waiting for new job %s failed (%r): answering with it as created", record.id, exc)
            return record
        return waited if waited is not None else record

    # -- cancel and delete --------------------------------------------------------------------
    async def cancel(self, job_id: str, caller: Caller) -> tuple[JobRecord, CancelOutcome]:
        """Cancel a queued job (CANCELED) or ask a running one to stop (REQUESTED); the job after it."""
        await self._visible(job_id, caller)
        result = await run_async(
            self.redis, cancel_job(job_id=job_id, result_ttl_s=self.settings.RESULT_TTL_S)
        )
        if result.outcome is CancelOutcome.NOT_FOUND:
            raise job_not_found(job_id)
        if result.outcome is CancelOutcome.ALREADY_ENDED:
            status = result.status.value if result.status else "finished"
            raise ApiError(
                409,
                ApiErrorCode.JOB_FINISHED,
                f"The job is already {status}; only queued or running jobs can be canceled.",
                details={"status": status},
            )
        return await self._visible(job_id, caller), result.outcome

    async def delete(self, job_id: str, caller: Caller) -> None:
        """Remove a job, its input and its result (a running job is stopped first); 404 after."""
        await self._visible(job_id, caller)
        await run_async(self.redis, delete_job(job_id=job_id))

    # -- listing ------------------------------------------------------------------------------
    async def list_page(
        self,
        caller: Caller,
        *,
        statuses: Sequence[JobStatus] = (),
        task: TaskName | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> JobPage:
        """The caller's jobs (every job for an admin key, or with no keys), newest first."""
        index = redis_keys.JOBS_INDEX if caller.admin else redis_keys.owner_jobs(caller.owner)
        after = _decode_cursor(cursor) if cursor else None
        top: float | str = after[0] if after else "+inf"
        wanted = set(statuses)
        records: list[JobRecord] = []
        scanned, offset = 0, 0
        last: tuple[float, str] | None = None
        while scanned < MAX_SCANNED_PER_PAGE:
            batch = cast(
                list[tuple[bytes, float]],
                await self.redis.zrange(
                    index,
                    top,
                    "-inf",
                    desc=True,
                    byscore=True,
                    offset=offset,
                    num=_SCAN_BATCH,
                    withscores=True,
                ),
            )
            if not batch:
                return JobPage(records, None)
            entries = [(as_text(member), float(score)) for member, score in batch]
            # The next read starts at this batch's last time, skipping the entries of that time
            # already read: an offset from the top would skip entries when jobs above it go away.
            bottom = entries[-1][1]
            at_bottom = sum(1 for _, score in entries if score == bottom)
            top, offset = bottom, (offset + len(entries) if top == bottom else at_bottom)
            if after is not None:
                # Equal times come in reverse id order: those up to the cursor's id were on earlier pages.
                entries = [(j, s) for j, s in entries if not (s == after[0] and j >= after[1])]
            summaries = await self._summaries([job_id for job_id, _ in entries])
            for (job_id, score), record in zip(entries, summaries, strict=True):
                scanned += 1
                last = (score, job_id)
                if record is None or not caller.may_see(record):
                    continue  # expired, or deleted, since the index was last tidied
                if (wanted and record.status not in wanted) or (task is not None and record.task is not task):
                    continue
                records.append(record)
                if len(records) == limit:
                    return JobPage(records, _encode_cursor(score, job_id))
        return JobPage(records, _encode_cursor(*last) if last else None)

    async def _summaries(self, job_ids: list[str]) -> list[JobRecord | None]:
        """The listed fields of each job (one round trip); None for a job that is gone."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(redis_keys.job(job_id), list(_SUMMARY_FIELDS))
        out: list[JobRecord | None] = []
        for values in await pipe.execute():
            fields = {k: as_text(v) for k, v in zip(_SUMMARY_FIELDS, values, strict=True) if v is not None}
            out.append(JobRecord.from_hash(fields) if "status" in fields else None)
        return out


def _encode_cursor(score: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r} {job_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, job_id = text.split(" ", 1)
        return float(score), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            422,
            ApiErrorCode.INVALID_REQUEST,
            "Invalid request: cursor: not a cursor this server gave; send next_cursor as it came, "
            "or leave it out for the first page.",
            details=[{"loc": ["query", "cursor"], "msg": "not a cursor", "type": "value_error"}],
        ) from None
