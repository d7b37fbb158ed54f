"""The Redis job protocol: every script that moves a job, each behind one typed function.

The gateway, the worker and the tests call these functions; no other module writes a script's
KEYS and ARGV or reads its raw answer. A function returns a ScriptCall (the script, its keys and
arguments, and how to read its answer into a typed result); ``run`` executes one on a
``redis.Redis`` (the worker) and ``run_async`` on a ``redis.asyncio.Redis`` (the gateway):

    result = await run_async(redis, create_job(record=..., queue_lists=..., message=..., ...))
    if isinstance(result, QueueFull): ...

Every transition is one Lua script, so a status never moves backwards and a job ends exactly once,
whoever races (a redelivered message, a second worker, a cancel, a delete). The statuses move
queued -> running -> succeeded | failed | canceled; queued may also end directly (cancel, a failure
before the start).

Every key a job owns is a field of JobKeys. The scripts that end a job (finish_job, cancel_job of a
queued job, start_job past the attempt limit) all run END_JOB, which gives every one of those keys
the result TTL (the input is deleted instead), and delete_job deletes all of them. A key added to
JobKeys is covered by both without touching a script: that is how "no key without a TTL once its
job is terminal" holds by construction (tests/shared/test_job_state_machine.py checks it). The
keys outside JobKeys are shared by many jobs and carry TTLs of their own: the idempotency key (its
own TTL), the reap claims (TTL), the indexes of GET /jobs (TTL refreshed by every create; entries
of ended jobs taken out once their record expired), and the running set (a job leaves it when it
ends or is deleted).

Keys of one job go in KEYS; the few shared keys (the running set, the indexes, a worker's
heartbeat key) are named inside the scripts: Amulet uses one Redis, never a cluster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from shared import redis_keys
from shared.job_record import JobRecord
from shared.jobs import JobStatus, to_timestamp, utcnow
from shared.tasks import TaskName

T = TypeVar("T")
Arg = str | int | float | bytes


# -- running a script -------------------------------------------------------------------------
@dataclass(frozen=True)
class LuaScript:
    name: str
    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


@dataclass(frozen=True)
class ScriptCall(Generic[T]):
    """One script call, ready to run: made by the functions below, run by ``run``/``run_async``."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    parse: Callable[[Any], T]


def run(client: redis.Redis, call: ScriptCall[T]) -> T:
    """Run ``call`` (EVALSHA; EVAL once after Redis lost its script cache, e.g. a restart)."""
    try:
        raw = client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
    except NoScriptError:
        raw = client.eval(call.script.text, len(call.keys), *call.keys, *call.args)
    return call.parse(raw)


async def run_async(client: redis.asyncio.Redis, call: ScriptCall[T]) -> T:
    """``run`` for the asyncio client."""
    try:
        raw = await client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
    except NoScriptError:
        raw = await client.eval(call.script.text, len(call.keys), *call.keys, *call.args)
    return call.parse(raw)


def as_text(value: object) -> str:
    """A Redis answer as text, whether the client decodes answers (str) or not (bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


# -- the keys of one job ----------------------------------------------------------------------
@dataclass(frozen=True)
class JobKeys:
    """Every key one job owns. Scripts take them as KEYS[1..N], in this order."""

    record: str
    input: str
    result: str

    @classmethod
    def of(cls, job_id: str) -> JobKeys:
        return cls(
            record=redis_keys.job(job_id),
            input=redis_keys.job_input(job_id),
            result=redis_keys.job_result_blob(job_id),
        )

    def all(self) -> tuple[str, ...]:
        """Every field, in order (not dataclasses.astuple, which deep-copies each on the hot path)."""
        return tuple(getattr(self, name) for name in _JOB_KEY_NAMES)


_JOB_KEY_NAMES = [f.name for f in dataclasses.fields(JobKeys)]
N_JOB_KEYS = len(_JOB_KEY_NAMES)
# Deleted when the job ends rather than kept with its result: nobody needs the upload any more.
DROPPED_WHEN_ENDED = ("input",)


def _key(name: str) -> str:
    """The Lua expression of one of the job's keys."""
    return f"KEYS[{_JOB_KEY_NAMES.index(name) + 1}]"


def _lua(template: str) -> str:
    """Fill a script's placeholders: the job's keys by name, the shared key names, the fields."""
    names = {f"key_{name}": _key(name) for name in _JOB_KEY_NAMES}
    return template.format(
        N=N_JOB_KEYS,
        running=json.dumps(redis_keys.RUNNING_SET),
        jobs_index=json.dumps(redis_keys.JOBS_INDEX),
        ended=json.dumps(redis_keys.ENDED_JOBS),
        owner_prefix=json.dumps(redis_keys.OWNER_JOBS_PREFIX),
        worker_prefix=json.dumps(redis_keys.WORKER_KEY_PREFIX),
        job_prefix=json.dumps(redis_keys.job("")),
        reap_prefix=json.dumps(redis_keys.REAP_CLAIM_PREFIX),
        done_channel=json.dumps(redis_keys.JOB_DONE_CHANNEL),
        cancel_channel=json.dumps(redis_keys.CANCEL_CHANNEL),
        cancel_field=json.dumps(redis_keys.CANCEL_REQUESTED_FIELD),
        dropped=" ".join(f"redis.call('DEL', {_key(name)})" for name in DROPPED_WHEN_ENDED),
        **names,
    )


# Lua shared by every script that ends a job (the caller has set its status): the job's keys get
# ``ttl`` (the dropped ones are deleted), it leaves the running set, it is noted in the ended-jobs
# index (so a later create takes it out of the GET /jobs indexes once its record expired) and its
# id is published for the gateways' waiters.
END_JOB = """
local function end_job(job_id, ttl, now)
  {dropped}
  for i = 1, {N} do redis.call('EXPIRE', KEYS[i], ttl) end
  redis.call('SREM', {running}, job_id)
  local owner = redis.call('HGET', {key_record}, 'owner') or ''
  redis.call('ZADD', {ended}, tonumber(now) + ttl, owner .. ' ' .. job_id)
  if redis.call('TTL', {ended}) < ttl then redis.call('EXPIRE', {ended}, ttl) end
  redis.call('PUBLISH', {done_channel}, job_id)
end
"""


# -- create ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IdempotencyClaim:
    """What a request with an Idempotency-Key asks to store: "<job id> <fingerprint>"."""

    owner: str
    key: str
    fingerprint: str
    ttl_s: int


@dataclass(frozen=True)
class StoredClaim:
    """What an earlier request stored under the same Idempotency-Key."""

    job_id: str
    fingerprint: str

    @classmethod
    def parse(cls, raw: bytes | str) -> StoredClaim:
        job_id, _, fingerprint = as_text(raw).partition(" ")
        return cls(job_id, fingerprint)


@dataclass(frozen=True)
class Created:
    """The job was stored and its message queued."""


@dataclass(frozen=True)
class KeyInUse:
    """Nothing was written: the Idempotency-Key names a job that still exists."""

    stored: StoredClaim


@dataclass(frozen=True)
class QueueFull:
    """Nothing was written: the queue holds ``depth`` waiting messages."""

    depth: int


CreateResult = Created | KeyInUse | QueueFull

# ARGV: 1 job id, 2 owner, 3 creation time, 4 max queue depth, 5 job TTL, 6 input TTL, 7 input
# ('' none), 8 idempotency value, 9 idempotency TTL, 10 message, 11 index TTL, 12.. the hash's
# fields and values. KEYS: the job's keys, the idempotency key ('' none), the queue's lists (the
# message goes on the first). Every read comes before the first write, so a refusal (memory
# included: Redis checks a script's memory only until its first write) writes nothing.
CREATE = LuaScript(
    "create",
    _lua("""
local idem = KEYS[{N} + 1]
if idem ~= '' then
  local stored = redis.call('GET', idem)
  if stored then
    local job_id = string.match(stored, '^[^ ]*')
    if redis.call('EXISTS', {job_prefix} .. job_id) == 1 then return {{1, stored}} end
  end
end
local depth = 0
for i = {N} + 2, #KEYS do depth = depth + redis.call('LLEN', KEYS[i]) end
if depth >= tonumber(ARGV[4]) then return {{2, tostring(depth)}} end
redis.call('HSET', {key_record}, unpack(ARGV, 12))
redis.call('EXPIRE', {key_record}, ARGV[5])
if ARGV[7] ~= '' then redis.call('SET', {key_input}, ARGV[7], 'EX', ARGV[6]) end
if idem ~= '' then redis.call('SET', idem, ARGV[8], 'EX', ARGV[9]) end
redis.call('LPUSH', KEYS[{N} + 2], ARGV[10])
local now, index_ttl = tonumber(ARGV[3]), tonumber(ARGV[11])
redis.call('ZADD', {jobs_index}, now, ARGV[1])
redis.call('EXPIRE', {jobs_index}, index_ttl)
if ARGV[2] ~= '' then
  local own = {owner_prefix} .. ARGV[2]
  redis.call('ZADD', own, now, ARGV[1])
  redis.call('EXPIRE', own, index_ttl)
  redis.call('ZREMRANGEBYSCORE', own, '-inf', now - index_ttl)
end
redis.call('ZREMRANGEBYSCORE', {jobs_index}, '-inf', now - index_ttl)
for _, member in ipairs(redis.call('ZRANGEBYSCORE', {ended}, '-inf', now, 'LIMIT', 0, 16)) do
  local owner, job_id = string.match(member, '^(.-) (.*)$')
  redis.call('ZREM', {jobs_index}, job_id)
  if owner ~= '' then redis.call('ZREM', {owner_prefix} .. owner, job_id) end
  redis.call('ZREM', {ended}, member)
end
return {{0, ''}}
"""),
)


def _parse_create(raw: Any) -> CreateResult:
    code, detail = int(raw[0]), raw[1]
    if code == 1:
        return KeyInUse(StoredClaim.parse(detail))
    if code == 2:
        return QueueFull(int(detail))
    return Created()


def create_job(
    *,
    record: JobRecord,
    queue_lists: Sequence[str],
    message: str,
    max_queue_depth: int,
    job_ttl_s: int,
    index_ttl_s: int,
    input_blob: bytes | None = None,
    input_ttl_s: int = 0,
    claim: IdempotencyClaim | None = None,
) -> ScriptCall[CreateResult]:
    """Store a new queued job and push its Celery message onto the first of ``queue_lists``.

    Nothing is written, and what stands in the way is returned, when ``claim``'s key names a job
    that still exists (KeyInUse: answer with that job; a job that expired or was deleted frees the
    key) or when the queue's lists hold ``max_queue_depth`` messages (QueueFull), in that order.
    Atomic: a job is queued exactly when its message is, a worker never sees a record without its
    input, the idempotency key never exists without its job. The job enters the GET /jobs indexes
    (all jobs, and its owner's), which are kept ``index_ttl_s`` (the longest a job can live).
    """
    fields = [item for pair in record.to_hash().items() for item in pair]
    keys = JobKeys.of(record.id)
    return ScriptCall(
        CREATE,
        (*keys.all(), redis_keys.idempotency(claim.owner, claim.key) if claim else "", *queue_lists),
        (
            record.id,
            record.owner,
            record.created_at,
            max_queue_depth,
            job_ttl_s,
            input_ttl_s,
            input_blob if input_blob is not None else "",
            f"{record.id} {claim.fingerprint}" if claim else "",
            claim.ttl_s if claim else "",
            message,
            index_ttl_s,
            *fields,
        ),
        _parse_create,
    )


# -- start -------------------------------------------------------------------------------------
class StartOutcome(Enum):
    STARTED = "started"
    # Finished, failed or canceled already (a redelivered message): skip it.
    ALREADY_ENDED = "already_ended"
    # No record: it expired, was deleted, or never existed. Drop the message.
    NOT_FOUND = "not_found"
    # Running on a worker whose heartbeat key still exists: a duplicate message. Drop it.
    RUNNING_ELSEWHERE = "running_elsewhere"
    # Its workers were lost max_attempts times: the script failed it (worker_lost).
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"


@dataclass(frozen=True)
class StartResult:
    outcome: StartOutcome
    # STARTED: the record after the transition (read in the same round trip).
    record: JobRecord | None = None
    # STARTED: this attempt's number; ATTEMPTS_EXHAUSTED: the attempts made.
    attempt: int | None = None
    # ALREADY_ENDED: the status it has.
    status: JobStatus | None = None
    # RUNNING_ELSEWHERE: the worker running it.
    running_on: str | None = None


# ARGV: 1 job id, 2 now, 3 worker, 4 model, 5 max attempts, 6 result TTL, 7 the error to fail it
# with when the attempts are exhausted (JSON). A running job whose worker is gone may be started
# again: a redelivery after its worker was lost (the reaper's re-publish, or the broker restoring
# the unacknowledged message). A running job whose worker still beats is a duplicate message,
# refused without counting an attempt, so however many copies of a message exist the job runs
# once at a time. Attempts never exceed the maximum: the delivery after the last lost attempt
# fails the job instead.
START = LuaScript(
    "start",
    _lua(
        END_JOB
        + """
local job_id = ARGV[1]
local cur = redis.call('HGET', {key_record}, 'status')
if not cur then return {{-1, ''}} end
if cur ~= 'queued' and cur ~= 'running' then return {{0, cur}} end
if cur == 'running' then
  local owner = redis.call('HGET', {key_record}, 'worker')
  if owner and redis.call('EXISTS', {worker_prefix} .. owner) == 1 then return {{-3, owner}} end
end
local attempts = tonumber(redis.call('HGET', {key_record}, 'attempts') or '0')
if attempts >= tonumber(ARGV[5]) then
  redis.call('HSET', {key_record}, 'status', 'failed', 'finished_at', ARGV[2], 'error', ARGV[7])
  end_job(job_id, tonumber(ARGV[6]), ARGV[2])
  return {{-2, tostring(attempts)}}
end
attempts = redis.call('HINCRBY', {key_record}, 'attempts', 1)
redis.call('HSET', {key_record}, 'status', 'running', 'worker', ARGV[3], 'model', ARGV[4])
redis.call('HSETNX', {key_record}, 'started_at', ARGV[2])
redis.call('SADD', {running}, job_id)
return {{1, tostring(attempts), redis.call('HGETALL', {key_record})}}
"""
    ),
)


def _parse_start(raw: Any) -> StartResult:
    code, detail = int(raw[0]), as_text(raw[1])
    if code == 1:
        flat = [as_text(v) for v in raw[2]]
        record = JobRecord.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        return StartResult(StartOutcome.STARTED, record=record, attempt=int(detail))
    if code == 0:
        return StartResult(StartOutcome.ALREADY_ENDED, status=JobStatus(detail))
    if code == -3:
        return StartResult(StartOutcome.RUNNING_ELSEWHERE, running_on=detail)
    if code == -2:
        return StartResult(StartOutcome.ATTEMPTS_EXHAUSTED, attempt=int(detail))
    return StartResult(StartOutcome.NOT_FOUND)


def start_job(
    *,
    job_id: str,
    worker: str,
    model: str | None,
    max_attempts: int,
    result_ttl_s: int,
    exhausted_error: dict[str, str],
    now: str | None = None,
) -> ScriptCall[StartResult]:
    """Move a queued job (or a running one whose worker was lost) to running on ``worker``.

    ``exhausted_error`` is the job's error when this delivery comes after ``max_attempts`` lost
    attempts: the script then fails the job itself (ATTEMPTS_EXHAUSTED), in the same transition.
    """
    return ScriptCall(
        START,
        JobKeys.of(job_id).all(),
        (
            job_id,
            now or to_timestamp(utcnow()),
            worker,
            model or "",
            max_attempts,
            result_ttl_s,
            json.dumps(exhausted_error),
        ),
        _parse_start,
    )


# -- finish ------------------------------------------------------------------------------------
class FinishOutcome(Enum):
    FINISHED = "finished"
    # Its cancel was requested while it ran: it ended canceled, the outcome discarded.
    CANCELED_INSTEAD = "canceled_instead"
    # It had ended already (canceled while queued, or a second outcome): nothing changed.
    ALREADY_ENDED = "already_ended"
    # No record (expired or deleted): nothing was written.
    NOT_FOUND = "not_found"


# ARGV: 1 job id, 2 status, 3 now, 4 result JSON ('' none), 5 error JSON ('' none), 6 result
# content type ('' none), 7 '1' when 8 is a binary result, 8 the binary result, 9 batch size ('' none),
# 10 result TTL. A running job whose cancel was requested ends canceled whatever outcome the
# worker brings (no result, no error): a client that asked to cancel never gets a result it was
# told would not come. Deciding here, atomically, closes the race with a cancel that arrives while
# the worker writes the outcome. The binary result is written here too, so nothing of a job that
# was deleted meanwhile comes back.
FINISH = LuaScript(
    "finish",
    _lua(
        END_JOB
        + """
local cur = redis.call('HGET', {key_record}, 'status')
if not cur then return -1 end
if cur ~= 'queued' and cur ~= 'running' then return 0 end
local code = 1
local status = ARGV[2]
if cur == 'running' and redis.call('HGET', {key_record}, {cancel_field}) == '1' then status = 'canceled' end
redis.call('HSET', {key_record}, 'status', status, 'finished_at', ARGV[3])
if status == 'canceled' and ARGV[2] ~= 'canceled' then
  code = 2
else
  if ARGV[4] ~= '' then redis.call('HSET', {key_record}, 'result', ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', {key_record}, 'error', ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('HSET', {key_record}, 'result_content_type', ARGV[6]) end
  if ARGV[7] == '1' then redis.call('SET', {key_result}, ARGV[8]) end
  if ARGV[9] ~= '' then redis.call('HSET', {key_record}, 'batch_size', ARGV[9]) end
end
end_job(ARGV[1], tonumber(ARGV[10]), ARGV[3])
return code
"""
    ),
)

_FINISH_CODES = {
    1: FinishOutcome.FINISHED,
    2: FinishOutcome.CANCELED_INSTEAD,
    0: FinishOutcome.ALREADY_ENDED,
    -1: FinishOutcome.NOT_FOUND,
}


def finish_job(
    *,
    job_id: str,
    status: JobStatus,
    result_ttl_s: int,
    result: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
    content_type: str | None = None,
    blob: bytes | None = None,
    batch_size: int | None = None,
    now: str | None = None,
) -> ScriptCall[FinishOutcome]:
    """End a job with its outcome (``status`` terminal), once: a second outcome changes nothing."""
    if not status.is_terminal():
        raise ValueError(f"finish_job needs a terminal status, not {status.value}")
    return ScriptCall(
        FINISH,
        JobKeys.of(job_id).all(),
        (
            job_id,
            status.value,
            now or to_timestamp(utcnow()),
            json.dumps(result) if result is not None else "",
            json.dumps(error) if error is not None else "",
            content_type or "",
            "1" if blob is not None else "0",
            blob if blob is not None else "",
            str(batch_size) if batch_size is not None else "",
            result_ttl_s,
        ),
        lambda raw: _FINISH_CODES[int(raw)],
    )


# -- cancel ------------------------------------------------------------------------------------
class CancelOutcome(Enum):
    # It was queued and is now canceled; its message is skipped by the worker.
    CANCELED = "canceled"
    # It is running: the flag is set and the id published; the worker stops it where it can.
    REQUESTED = "requested"
    ALREADY_ENDED = "already_ended"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    status: JobStatus | None  # the status it had (None: no such job)


# ARGV: 1 job id, 2 now, 3 result TTL. One script, so a job that starts between the client's
# read and the cancel is never canceled as if it were still queued.
CANCEL = LuaScript(
    "cancel",
    _lua(
        END_JOB
        + """
local cur = redis.call('HGET', {key_record}, 'status')
if not cur then return {{-1, ''}} end
if cur == 'queued' then
  redis.call('HSET', {key_record}, 'status', 'canceled', 'finished_at', ARGV[2])
  end_job(ARGV[1], tonumber(ARGV[3]), ARGV[2])
  return {{1, cur}}
end
if cur == 'running' then
  redis.call('HSET', {key_record}, {cancel_field}, '1')
  redis.call('PUBLISH', {cancel_channel}, ARGV[1])
  return {{2, cur}}
end
return {{0, cur}}
"""
    ),
)

_CANCEL_CODES = {
    1: CancelOutcome.CANCELED,
    2: CancelOutcome.REQUESTED,
    0: CancelOutcome.ALREADY_ENDED,
    -1: CancelOutcome.NOT_FOUND,
}


def _parse_cancel(raw: Any) -> CancelResult:
    outcome = _CANCEL_CODES[int(raw[0])]
    return CancelResult(outcome, None if outcome is CancelOutcome.NOT_FOUND else JobStatus(as_text(raw[1])))


def cancel_job(*, job_id: str, result_ttl_s: int, now: str | None = None) -> ScriptCall[CancelResult]:
    """Cancel a queued job, or ask the worker of a running one to stop it."""
    return ScriptCall(
        CANCEL,
        JobKeys.of(job_id).all(),
        (job_id, now or to_timestamp(utcnow()), result_ttl_s),
        _parse_cancel,
    )


# -- delete ------------------------------------------------------------------------------------
class DeleteOutcome(Enum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"


# ARGV: 1 job id. A running job's worker is told to stop (the cancel channel; the record being
# gone counts as canceled for its cancel poll); its late outcome finds no record and writes
# nothing (finish_job: NOT_FOUND), and a redelivered message finds none either (start_job).
DELETE = LuaScript(
    "delete",
    _lua("""
local job_id = ARGV[1]
local cur = redis.call('HGET', {key_record}, 'status')
if not cur then return 0 end
local owner = redis.call('HGET', {key_record}, 'owner') or ''
if cur == 'running' then redis.call('PUBLISH', {cancel_channel}, job_id) end
redis.call('DEL', unpack(KEYS, 1, {N}))
redis.call('SREM', {running}, job_id)
redis.call('ZREM', {jobs_index}, job_id)
if owner ~= '' then redis.call('ZREM', {owner_prefix} .. owner, job_id) end
redis.call('ZREM', {ended}, owner .. ' ' .. job_id)
redis.call('PUBLISH', {done_channel}, job_id)
return 1
"""),
)


def delete_job(*, job_id: str) -> ScriptCall[DeleteOutcome]:
    """Remove a job and everything it owns (stopping it first if it runs)."""
    return ScriptCall(
        DELETE,
        JobKeys.of(job_id).all(),
        (job_id,),
        lambda raw: DeleteOutcome.DELETED if int(raw) == 1 else DeleteOutcome.NOT_FOUND,
    )


# -- reap --------------------------------------------------------------------------------------
class ReapOutcome(Enum):
    # Not running any more (ended, expired or deleted): it was taken out of the running set.
    NOT_RUNNING = "not_running"
    # Its worker still beats.
    ALIVE = "alive"
    # Its worker is gone, but another worker claimed this attempt first.
    CLAIMED_ELSEWHERE = "claimed_elsewhere"
    # Its worker is gone and this caller claimed the attempt: publish its message again.
    LOST = "lost"


@dataclass(frozen=True)
class ReapResult:
    outcome: ReapOutcome
    # LOST only: what to publish, and for the log.
    task: TaskName | None = None
    worker: str | None = None
    attempt: int | None = None


# ARGV: 1 job id, 2 the reaping worker, 3 claim TTL. The claim (SET NX, one per lost attempt)
# makes one worker re-publish the job, however many notice.
REAP = LuaScript(
    "reap",
    _lua("""
local job_id = ARGV[1]
local fields = redis.call('HMGET', {key_record}, 'status', 'worker', 'task', 'attempts')
if fields[1] ~= 'running' then
  redis.call('SREM', {running}, job_id)
  return {{0}}
end
if fields[2] and redis.call('EXISTS', {worker_prefix} .. fields[2]) == 1 then return {{1}} end
local attempt = fields[4] or '0'
if not redis.call('SET', {reap_prefix} .. job_id .. ':' .. attempt, ARGV[2], 'NX', 'EX', ARGV[3]) then
  return {{2}}
end
return {{3, fields[3], fields[2] or '', attempt}}
"""),
)


def _parse_reap(raw: Any) -> ReapResult:
    code = int(raw[0])
    if code == 3:
        return ReapResult(
            ReapOutcome.LOST, TaskName(as_text(raw[1])), as_text(raw[2]) or None, int(as_text(raw[3]))
        )
    return ReapResult((ReapOutcome.NOT_RUNNING, ReapOutcome.ALIVE, ReapOutcome.CLAIMED_ELSEWHERE)[code])


def reap_job(*, job_id: str, reaper: str, claim_ttl_s: int) -> ScriptCall[ReapResult]:
    """Check one job of the running set: is its worker gone, and is it this reaper's to publish again?"""
    return ScriptCall(REAP, JobKeys.of(job_id).all(), (job_id, reaper, claim_ttl_s), _parse_reap)
