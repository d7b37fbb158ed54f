"""How a job is stored in its Redis hash, and the atomic status transitions.

Both sides use these: the gateway creates and reads records, the worker moves them
forward. Transitions are Lua scripts so that a status never moves backwards and a job
finishes exactly once, even when two parties race (a redelivered job, a cancel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.jobs import JobStatus
from shared.tasks import TaskName


@dataclass
class JobRecord:
    id: str
    task: TaskName
    status: JobStatus
    created_at: str
    params: dict[str, Any] = field(default_factory=dict)
    # JSON input of text tasks; audio lives under redis_keys.job_input(id) instead.
    input: Any = None
    input_filename: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: Any = None
    error: dict[str, str] | None = None
    attempts: int = 0
    worker: str | None = None
    model: str | None = None
    result_content_type: str | None = None
    # How many jobs shared the forward pass that produced the result (worker/batching.py).
    batch_size: int | None = None

    def to_hash(self) -> dict[str, str]:
        """Fields for HSET at creation (only what is known then)."""
        h = {
            "id": self.id,
            "task": self.task.value,
            "status": self.status.value,
            "created_at": self.created_at,
            "params": json.dumps(self.params),
            "attempts": str(self.attempts),
        }
        if self.input is not None:
            h["input"] = json.dumps(self.input)
        if self.input_filename:
            h["input_filename"] = self.input_filename
        return h

    @classmethod
    def from_hash(cls, h: dict[bytes | str, bytes | str]) -> JobRecord:
        d = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in h.items()
        }

        def js(name: str) -> Any:
            return json.loads(d[name]) if d.get(name) else None

        return cls(
            id=d["id"],
            task=TaskName(d["task"]),
            status=JobStatus(d["status"]),
            created_at=d["created_at"],
            params=js("params") or {},
            input=js("input"),
            input_filename=d.get("input_filename"),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            result=js("result"),
            error=js("error"),
            attempts=int(d.get("attempts") or 0),
            worker=d.get("worker"),
            model=d.get("model"),
            result_content_type=d.get("result_content_type"),
            batch_size=int(d["batch_size"]) if d.get("batch_size") else None,
        )


# KEYS: job hash, and optionally the running-jobs set (redis_keys.RUNNING_SET).
# ARGV: now, worker hostname, model, max attempts, and optionally the heartbeat key prefix
# (redis_keys.WORKER_KEY_PREFIX) and the job id (for the running set).
# Returns {code, detail[, fields]}: 1 started (detail = attempt number; fields = the job hash
# after the transition, flat as HGETALL gives it, so the worker reads its job in the same round
# trip), 0 already terminal (detail = status), -1 no such job, -2 attempts exhausted (detail =
# attempts), -3 refused: it is running and its recorded worker's heartbeat key still exists
# (detail = that worker).
# A running job whose worker is gone may be started again: a redelivery after its worker was
# lost (the reaper's re-publish, or the broker restoring the unacknowledged message). A
# running job whose worker still beats is a duplicate message, refused without counting an
# attempt, so however many copies of a message exist the job runs once at a time.
# The heartbeat key is built inside the script from its prefix (not declared in KEYS): Amulet
# uses one Redis, never a cluster.
START_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1, ''} end
if cur ~= 'queued' and cur ~= 'running' then return {0, cur} end
if cur == 'running' and ARGV[5] and ARGV[5] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'worker')
  if owner and redis.call('EXISTS', ARGV[5] .. owner) == 1 then return {-3, owner} end
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[4]) then return {-2, tostring(attempts)} end
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[2], 'model', ARGV[3])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
if KEYS[2] and ARGV[6] then redis.call('SADD', KEYS[2], ARGV[6]) end
return {1, tostring(attempts), redis.call('HGETALL', KEYS[1])}
"""

# KEYS: job hash, input blob, result blob, and optionally the running-jobs set. ARGV: status,
# now, result JSON or '', error JSON or '', result content type or '', TTL seconds, done
# channel, job id, optionally the batch size the job ran in ('' or absent: none), and optionally
# the cancel-requested field name (redis_keys.CANCEL_REQUESTED_FIELD).
# Returns 1 finished, 2 finished as canceled instead (see below), 0 was already terminal
# (nothing changed), -1 no such job.
# With the cancel field given, a running job whose cancel was requested ends ``canceled``
# whatever outcome the worker brings (no result, no error, its binary result deleted): a
# client that asked to cancel never gets a result it was told would not come. Deciding here,
# atomically, closes the race with a cancel that arrives while the worker writes the outcome.
FINISH_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return -1 end
if cur == 'succeeded' or cur == 'failed' or cur == 'canceled' then return 0 end
local code = 1
local status = ARGV[1]
if ARGV[10] and ARGV[10] ~= '' and cur == 'running' and redis.call('HGET', KEYS[1], ARGV[10]) == '1' then
  status = 'canceled'
end
redis.call('HSET', KEYS[1], 'status', status, 'finished_at', ARGV[2])
if status == 'canceled' and ARGV[1] ~= 'canceled' then
  code = 2
  redis.call('DEL', KEYS[3])
else
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result_content_type', ARGV[5]) end
  if ARGV[9] and ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'batch_size', ARGV[9]) end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6])) end
if KEYS[4] then redis.call('SREM', KEYS[4], ARGV[8]) end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return code
"""

# KEYS: job hash, input blob, result blob. ARGV: now, TTL seconds, done channel, job id,
# cancel channel, cancel-requested field name.
# Returns {code, status}: 1 canceled (it was queued; its message is skipped by the worker),
# 2 cancel requested (it is running; the worker stops it where the model allows),
# 0 already terminal (nothing changed), -1 no such job. One script, so a job that starts
# between the client's read and the cancel is never canceled as if it were still queued.
CANCEL_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1, ''} end
if cur == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'finished_at', ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  redis.call('DEL', KEYS[2])
  redis.call('DEL', KEYS[3])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return {1, 'canceled'}
end
if cur == 'running' then
  redis.call('HSET', KEYS[1], ARGV[6], '1')
  redis.call('PUBLISH', ARGV[5], ARGV[4])
  return {2, cur}
end
return {0, cur}
"""
