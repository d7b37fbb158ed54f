"""The job record and its Lua transitions, run against a real Redis.

These scripts are what keeps a status from moving backwards and a job from finishing twice,
whoever calls them (a redelivered message, a second worker).
"""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from shared import redis_keys
from shared.job_record import FINISH_SCRIPT, START_SCRIPT, JobRecord
from shared.jobs import JobStatus
from shared.tasks import TaskName
from tests.utils.stack import RedisServer


@pytest.fixture
def r(redis_server: RedisServer) -> redis.Redis:
    # db 2: away from the gateways' dbs 0 and 1.
    return redis_server.client(db=2)


def _new_job(r: redis.Redis) -> str:
    job_id = uuid.uuid4().hex
    record = JobRecord(
        id=job_id,
        task=TaskName.EMBED,
        status=JobStatus.QUEUED,
        created_at="1795000000.0",
        params={"normalize": True},
        input={"texts": ["a"]},
    )
    r.hset(redis_keys.job(job_id), mapping=record.to_hash())
    return job_id


def _start(r: redis.Redis, job_id: str, max_attempts: int = 3) -> list:
    return r.register_script(START_SCRIPT)(
        keys=[redis_keys.job(job_id)], args=["1795000001.0", "w@test", "model", max_attempts]
    )


def _finish(
    r: redis.Redis,
    job_id: str,
    status: str,
    result: dict | None = None,
    error: dict | None = None,
    channel: str = redis_keys.JOB_DONE_CHANNEL,
) -> int:
    return r.register_script(FINISH_SCRIPT)(
        keys=[redis_keys.job(job_id), redis_keys.job_input(job_id), redis_keys.job_result_blob(job_id)],
        args=[
            status,
            "1795000002.0",
            json.dumps(result) if result else "",
            json.dumps(error) if error else "",
            "",
            120,
            channel,
            job_id,
        ],
    )


def test_record_round_trips_through_its_hash() -> None:
    record = JobRecord(
        id="abc",
        task=TaskName.TRANSCRIBE,
        status=JobStatus.QUEUED,
        created_at="1.5",
        params={"language": "en"},
        input_filename="a.wav",
    )
    back = JobRecord.from_hash({k.encode(): v.encode() for k, v in record.to_hash().items()})
    assert back == record


def test_start_then_finish_moves_queued_to_running_to_succeeded(r: redis.Redis) -> None:
    job_id = _new_job(r)
    code, attempt, fields = _start(r, job_id)
    assert (code, attempt) == (1, "1")
    # The started job's record comes back with the transition (the worker's one round trip).
    started = JobRecord.from_hash(dict(zip(fields[::2], fields[1::2], strict=True)))
    assert started == JobRecord.from_hash(r.hgetall(redis_keys.job(job_id)))
    assert started.status is JobStatus.RUNNING and started.input == {"texts": ["a"]} and started.attempts == 1
    assert r.hget(redis_keys.job(job_id), "status") == "running"
    assert _finish(r, job_id, "succeeded", result={"dimension": 3}) == 1
    record = JobRecord.from_hash(r.hgetall(redis_keys.job(job_id)))
    assert record.status is JobStatus.SUCCEEDED
    assert record.result == {"dimension": 3}
    assert record.started_at == "1795000001.0" and record.finished_at == "1795000002.0"
    assert 0 < r.ttl(redis_keys.job(job_id)) <= 120


def test_a_finished_job_never_moves_again(r: redis.Redis) -> None:
    job_id = _new_job(r)
    _start(r, job_id)
    assert _finish(r, job_id, "failed", error={"code": "model_error", "message": "x"}) == 1
    # A second finish (e.g. a redelivered message) and a late start change nothing.
    assert _finish(r, job_id, "succeeded", result={"late": True}) == 0
    assert _start(r, job_id) == [0, "failed"]
    record = JobRecord.from_hash(r.hgetall(redis_keys.job(job_id)))
    assert record.status is JobStatus.FAILED
    assert record.result is None
    assert record.error == {"code": "model_error", "message": "x"}


def test_finish_publishes_the_job_id_and_drops_the_input(r: redis.Redis) -> None:
    job_id = _new_job(r)
    r.set(redis_keys.job_input(job_id), b"audio")
    channel = f"test-done-{job_id}"
    pubsub = r.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    _start(r, job_id)
    _finish(r, job_id, "succeeded", result={}, channel=channel)
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message is not None and message["data"] == job_id
    assert not r.exists(redis_keys.job_input(job_id))


def test_start_counts_attempts_and_refuses_past_the_maximum(r: redis.Redis) -> None:
    job_id = _new_job(r)
    assert _start(r, job_id, max_attempts=2)[:2] == [1, "1"]
    # Redelivery of a running job (its worker was lost) is allowed up to max attempts.
    assert _start(r, job_id, max_attempts=2)[:2] == [1, "2"]
    assert _start(r, job_id, max_attempts=2) == [-2, "3"]


def test_scripts_report_a_missing_job(r: redis.Redis) -> None:
    assert _start(r, "nope")[0] == -1
    assert _finish(r, "nope", "succeeded") == -1


def _start_as(r: redis.Redis, job_id: str, worker: str, max_attempts: int = 3) -> list:
    """START as the worker does: with the running set and the heartbeat key prefix."""
    return r.register_script(START_SCRIPT)(
        keys=[redis_keys.job(job_id), redis_keys.RUNNING_SET],
        args=["1795000001.0", worker, "model", max_attempts, redis_keys.WORKER_KEY_PREFIX, job_id],
    )


def _finish_as_worker(r: redis.Redis, job_id: str, status: str, result: dict | None = None) -> int:
    return r.register_script(FINISH_SCRIPT)(
        keys=[
            redis_keys.job(job_id),
            redis_keys.job_input(job_id),
            redis_keys.job_result_blob(job_id),
            redis_keys.RUNNING_SET,
        ],
        args=[
            status,
            "1795000002.0",
            json.dumps(result) if result else "",
            "",
            "",
            120,
            redis_keys.JOB_DONE_CHANNEL,
            job_id,
            "",
            redis_keys.CANCEL_REQUESTED_FIELD,
        ],
    )


def test_a_duplicate_delivery_is_refused_while_the_running_worker_beats(r: redis.Redis) -> None:
    job_id = _new_job(r)
    alive = f"alive-{job_id}"
    r.set(redis_keys.worker(alive), "{}", ex=60)
    assert _start_as(r, job_id, alive)[:2] == [1, "1"]
    assert r.sismember(redis_keys.RUNNING_SET, job_id)
    # A second message (re-published, or restored by the broker) while its worker beats: refused,
    # and no attempt is counted.
    assert _start_as(r, job_id, "other") == [-3, alive]
    assert r.hget(redis_keys.job(job_id), "attempts") == "1"
    assert r.hget(redis_keys.job(job_id), "worker") == alive
    # Its worker's heartbeat key expired (the worker was killed): the next delivery starts it again.
    r.delete(redis_keys.worker(alive))
    assert _start_as(r, job_id, "other")[:2] == [1, "2"]
    assert _finish_as_worker(r, job_id, "succeeded", {"ok": True}) == 1
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)


def test_a_cancel_requested_job_finishes_canceled_whatever_the_worker_brings(r: redis.Redis) -> None:
    job_id = _new_job(r)
    _start_as(r, job_id, "w")
    r.set(redis_keys.job_result_blob(job_id), b"RIFF")
    r.hset(redis_keys.job(job_id), redis_keys.CANCEL_REQUESTED_FIELD, "1")
    assert _finish_as_worker(r, job_id, "succeeded", {"text": "late"}) == 2
    record = JobRecord.from_hash(r.hgetall(redis_keys.job(job_id)))
    assert record.status is JobStatus.CANCELED
    assert record.result is None and record.error is None
    assert not r.exists(redis_keys.job_result_blob(job_id))
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)
