"""Creating and reading job records in Redis (layout in shared/redis_keys.py).

The gateway creates records (with their queue message, in one script) and cancels them on a
client's request; every other transition belongs to the worker. All of them go through Lua
scripts, so status never moves backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis

from api.idempotency import IdempotencyClaim, StoredClaim
from api.job_requests import JobSubmission
from api.publishing import QueueMessage
from shared import redis_keys
from shared.job_record import CANCEL_SCRIPT, JobRecord
from shared.jobs import JobStatus, to_timestamp, utcnow
from shared.settings import ApiSettings


class CancelOutcome(IntEnum):
    """CANCEL_SCRIPT's answer."""

    CANCELED = 1
    REQUESTED = 2
    ALREADY_FINISHED = 0
    NOT_FOUND = -1


@dataclass(frozen=True)
class QueueFull:
    depth: int


_JOB_KEY_PREFIX = redis_keys.job("")
_CREATED, _STORED_CLAIM, _QUEUE_FULL = 0, 1, 2

# KEYS: job hash, input blob, idempotency key ('' for none), then the queue's lists, the
# first being the one the message is pushed on. ARGV: max queue depth, job TTL, input TTL
# ('' for no input), input, idempotency value, idempotency TTL, job key prefix, message, then
# the job hash's fields and values.
# Returns {0, ''} created and queued; {1, stored value} the key names a job that still
# exists (a job that expired frees its key); {2, depth} the queue is full. Every read comes
# before the first write, so a refusal (memory included) writes nothing. The job key of a
# stored claim is built from its prefix (not in KEYS): Amulet uses one Redis, never a cluster.
CREATE_SCRIPT = """
if KEYS[3] ~= '' then
  local stored = redis.call('GET', KEYS[3])
  if stored then
    local job_id = string.match(stored, '^[^ ]*')
    if redis.call('EXISTS', ARGV[7] .. job_id) == 1 then return {1, stored} end
  end
end
local depth = 0
for i = 4, #KEYS do depth = depth + redis.call('LLEN', KEYS[i]) end
if depth >= tonumber(ARGV[1]) then return {2, tostring(depth)} end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3]) end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6]) end
redis.call('LPUSH', KEYS[4], ARGV[8])
return {0, ''}
"""


class JobStore:
    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self._redis = redis
        self._settings = settings
        # Registered once: redis-py runs it with EVALSHA and loads it on NOSCRIPT, so a
        # restarted Redis needs no special handling.
        self._cancel = redis.register_script(CANCEL_SCRIPT)
        self._create = redis.register_script(CREATE_SCRIPT)

    async def create(
        self,
        job_id: str,
        submission: JobSubmission,
        message: QueueMessage,
        max_depth: int,
        claim: IdempotencyClaim | None = None,
    ) -> JobRecord | StoredClaim | QueueFull:
        """Store a new queued job and push its Celery message, in one round trip.

        Nothing is written (and what stands in the way is returned) when ``claim``'s key
        already names a live job (a StoredClaim: answer with that job) or when the queue
        holds ``max_depth`` waiting messages (QueueFull), checked in that order.

        One Lua script, so atomic: a job is queued exactly when its message is on the queue
        (never a queued job that nobody will run), a worker never sees a record without its
        audio, the idempotency key never exists without its job, and concurrent requests with
        one key create one job. Under maxmemory Redis refuses the script's first write, before
        anything was written (a script is only checked for memory until it writes), so no
        partial job is left.
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
        fields = [item for pair in record.to_hash().items() for item in pair]
        audio = submission.audio
        code, detail = await self._create(
            keys=[
                redis_keys.job(job_id),
                redis_keys.job_input(job_id),
                claim.redis_key if claim is not None else "",
                *message.lists,
            ],
            args=[
                max_depth,
                self._settings.JOB_TTL_S,
                self._settings.INPUT_TTL_S if audio is not None else "",
                audio if audio is not None else "",
                claim.value(job_id) if claim is not None else "",
                claim.ttl_s if claim is not None else "",
                _JOB_KEY_PREFIX,
                message.body,
                *fields,
            ],
        )
        if code == _STORED_CLAIM:
            return StoredClaim.parse(detail)
        if code == _QUEUE_FULL:
            return QueueFull(int(detail))
        return record

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
