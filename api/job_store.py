"""Creating and reading job records in Redis (layout in shared/redis_keys.py).

The gateway creates records, cancels them on a client's request and, when publishing
fails, finishes them as failed; every other transition belongs to the worker. All of them
go through the shared Lua scripts, so status never moves backwards.
"""

from __future__ import annotations

import json
import logging
from enum import IntEnum

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

from api.idempotency import IdempotencyClaim, StoredClaim
from api.job_requests import JobSubmission
from shared import redis_keys
from shared.job_record import CANCEL_SCRIPT, FINISH_SCRIPT, JobRecord
from shared.jobs import ErrorCode, JobStatus, to_timestamp, utcnow
from shared.settings import ApiSettings

log = logging.getLogger(__name__)


class CancelOutcome(IntEnum):
    """CANCEL_SCRIPT's answer."""

    CANCELED = 1
    REQUESTED = 2
    ALREADY_FINISHED = 0
    NOT_FOUND = -1


class JobStore:
    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self._redis = redis
        self._settings = settings
        # Registered once: redis-py runs it with EVALSHA and loads it on NOSCRIPT, so a
        # restarted Redis needs no special handling.
        self._finish = redis.register_script(FINISH_SCRIPT)
        self._cancel = redis.register_script(CANCEL_SCRIPT)

    async def create(
        self, job_id: str, submission: JobSubmission, claim: IdempotencyClaim | None = None
    ) -> JobRecord | StoredClaim:
        """Store a new queued job; with an idempotency ``claim`` whose key an earlier request
        already holds, store nothing and return what that request stored instead.

        One MULTI: a worker never sees a record without its audio, nor audio without a
        record, and the idempotency key never exists without its job. When Redis refuses a
        write (out of memory), EXEC discards the whole transaction: no partial job is left.
        """
        record = JobRecord(
            id=job_id,
            task=submission.task,
            status=JobStatus.QUEUED,
            created_at=to_timestamp(utcnow()),
            params=submission.params,
            input=submission.input,
            input_filename=submission.input_filename,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if claim is not None:
                        # WATCH: if a concurrent request stores the key before our EXEC, EXEC
                        # fails and the loop finds its job instead of creating a second one.
                        await pipe.watch(claim.redis_key)
                        stored = await self._live_claim(pipe, claim)
                        if stored is not None:
                            await pipe.unwatch()
                            return stored
                        pipe.multi()
                        pipe.set(claim.redis_key, claim.value(job_id), ex=claim.ttl_s)
                    self._queue_record_writes(pipe, record, submission.audio)
                    await pipe.execute()
                    return record
                except WatchError:
                    continue

    def _queue_record_writes(self, pipe: Pipeline, record: JobRecord, audio: bytes | None) -> None:
        pipe.hset(redis_keys.job(record.id), mapping=record.to_hash())
        pipe.expire(redis_keys.job(record.id), self._settings.JOB_TTL_S)
        if audio is not None:
            pipe.set(redis_keys.job_input(record.id), audio, ex=self._settings.INPUT_TTL_S)

    @staticmethod
    async def _live_claim(pipe: Pipeline, claim: IdempotencyClaim) -> StoredClaim | None:
        """The stored claim, unless its job has expired (then the key may be used again)."""
        raw = await pipe.get(claim.redis_key)
        if raw is None:
            return None
        stored = StoredClaim.parse(raw)
        if not await pipe.exists(redis_keys.job(stored.job_id)):
            return None
        return stored

    async def load(self, job_id: str) -> JobRecord | None:
        fields = await self._redis.hgetall(redis_keys.job(job_id))
        return JobRecord.from_hash(fields) if fields else None

    async def load_result_blob(self, job_id: str) -> bytes | None:
        return await self._redis.get(redis_keys.job_result_blob(job_id))

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, str]:
        """Cancel a queued job, or flag a running one; returns the outcome and the status seen."""
        code, status = await self._cancel(
            keys=[redis_keys.job(job_id), redis_keys.job_input(job_id), redis_keys.job_result_blob(job_id)],
            args=[
                to_timestamp(utcnow()),
                self._settings.RESULT_TTL_S,
                redis_keys.JOB_DONE_CHANNEL,
                job_id,
                redis_keys.CANCEL_CHANNEL,
                redis_keys.CANCEL_REQUESTED_FIELD,
            ],
        )
        return CancelOutcome(int(code)), status.decode() if isinstance(status, bytes) else str(status)

    async def fail_unpublished(self, job_id: str, reason: str) -> None:
        """Finish a job that never reached the queue, so it is not left queued forever.

        When Redis refuses even that (out of memory), the record is deleted instead: DEL is
        allowed under maxmemory, and a job that was never queued must not look queued.
        """
        try:
            await self._fail(job_id, reason)
        except RedisError as exc:
            log.warning("job %s: could not mark the unpublished job failed (%r); deleting it", job_id, exc)
            await self._redis.delete(redis_keys.job(job_id), redis_keys.job_input(job_id))

    async def _fail(self, job_id: str, reason: str) -> None:
        error = {"code": ErrorCode.INTERNAL_ERROR.value, "message": f"The job could not be queued: {reason}"}
        await self._finish(
            keys=[redis_keys.job(job_id), redis_keys.job_input(job_id), redis_keys.job_result_blob(job_id)],
            args=[
                JobStatus.FAILED.value,
                to_timestamp(utcnow()),
                "",
                json.dumps(error),
                "",
                self._settings.RESULT_TTL_S,
                redis_keys.JOB_DONE_CHANNEL,
                job_id,
            ],
        )
