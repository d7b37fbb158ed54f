"""Creating and reading job records in Redis (layout in shared/redis_keys.py).

The gateway only creates records and, when publishing fails, finishes them as failed;
every other transition belongs to the worker and goes through the shared Lua scripts.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis

from api.job_requests import JobSubmission
from shared import redis_keys
from shared.job_record import FINISH_SCRIPT, JobRecord
from shared.jobs import ErrorCode, JobStatus, to_timestamp, utcnow
from shared.settings import ApiSettings


class JobStore:
    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self._redis = redis
        self._settings = settings
        # Registered once: redis-py runs it with EVALSHA and loads it on NOSCRIPT, so a
        # restarted Redis needs no special handling.
        self._finish = redis.register_script(FINISH_SCRIPT)

    async def create(self, job_id: str, submission: JobSubmission) -> JobRecord:
        record = JobRecord(
            id=job_id,
            task=submission.task,
            status=JobStatus.QUEUED,
            created_at=to_timestamp(utcnow()),
            params=submission.params,
            input=submission.input,
            input_filename=submission.input_filename,
        )
        # One MULTI: a worker never sees a record without its audio, nor audio without a record.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(redis_keys.job(job_id), mapping=record.to_hash())
            pipe.expire(redis_keys.job(job_id), self._settings.JOB_TTL_S)
            if submission.audio is not None:
                pipe.set(redis_keys.job_input(job_id), submission.audio, ex=self._settings.INPUT_TTL_S)
            await pipe.execute()
        return record

    async def load(self, job_id: str) -> JobRecord | None:
        fields = await self._redis.hgetall(redis_keys.job(job_id))
        return JobRecord.from_hash(fields) if fields else None

    async def load_result_blob(self, job_id: str) -> bytes | None:
        return await self._redis.get(redis_keys.job_result_blob(job_id))

    async def fail_unpublished(self, job_id: str, reason: str) -> None:
        """Finish a job that never reached the queue, so it is not left queued forever."""
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
