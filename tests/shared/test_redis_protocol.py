"""The job protocol (shared/redis_protocol.py) against a real Redis, through the same typed functions
the gateway and the worker call.

These scripts are what keeps a status from moving backwards and a job from finishing twice,
whoever calls them (a redelivered message, a second worker, a cancel, a delete).
tests/shared/test_job_state_machine.py drives them with random sequences.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from deploy.local.stack import RedisServer
from shared import redis_keys
from shared.job_record import JobRecord
from shared.jobs import JobStatus
from shared.redis_protocol import (
    CancelOutcome,
    Created,
    DeleteOutcome,
    FinishOutcome,
    IdempotencyClaim,
    JobKeys,
    KeyInUse,
    QueueFull,
    ReapOutcome,
    StartOutcome,
    cancel_job,
    create_job,
    delete_job,
    finish_job,
    reap_job,
    run,
    start_job,
)
from shared.tasks import TaskName

TTL = 120
QUEUE = "protocol-test-queue"
LOST = {"code": "worker_lost", "message": "lost"}


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    # db 6: no gateway uses it; emptied so the indexes are this test's own.
    client = redis_server.client(db=6)
    client.flushdb()
    yield client


def _new_job(
    r: redis.Redis, *, owner: str = "", claim: IdempotencyClaim | None = None, audio: bytes | None = None
) -> str:
    job_id = uuid.uuid4().hex
    record = JobRecord(
        id=job_id,
        task=TaskName.EMBED,
        status=JobStatus.QUEUED,
        created_at="1795000000.0",
        params={"normalize": True},
        input={"texts": ["a"]},
        owner=owner,
    )
    created = run(
        r,
        create_job(
            record=record,
            queue_lists=[QUEUE],
            message=f"message of {job_id}",
            max_queue_depth=1000,
            job_ttl_s=3600,
            index_ttl_s=7200,
            input_blob=audio,
            input_ttl_s=600,
            claim=claim,
        ),
    )
    assert created == Created()
    return job_id


def _start(r: redis.Redis, job_id: str, worker: str = "w@test", max_attempts: int = 3):  # noqa: ANN202
    return run(
        r,
        start_job(
            job_id=job_id,
            worker=worker,
            model="model",
            max_attempts=max_attempts,
            result_ttl_s=TTL,
            exhausted_error=LOST,
            now="1795000001.0",
        ),
    )


def _finish(r: redis.Redis, job_id: str, status: JobStatus, **outcome: object) -> FinishOutcome:
    return run(r, finish_job(job_id=job_id, status=status, result_ttl_s=TTL, now="1795000002.0", **outcome))


def _record(r: redis.Redis, job_id: str) -> JobRecord:
    return JobRecord.from_hash(r.hgetall(redis_keys.job(job_id)))


def test_record_round_trips_through_its_hash() -> None:
    record = JobRecord(
        id="abc",
        task=TaskName.TRANSCRIBE,
        status=JobStatus.QUEUED,
        created_at="1.5",
        params={"language": "en"},
        input_filename="a.wav",
        owner="k1",
    )
    back = JobRecord.from_hash({k.encode(): v.encode() for k, v in record.to_hash().items()})
    assert back == record


def test_create_stores_the_record_input_message_and_indexes(r: redis.Redis) -> None:
    job_id = _new_job(r, owner="owner-1", audio=b"RIFF")
    record = _record(r, job_id)
    assert (record.status, record.owner, record.attempts) == (JobStatus.QUEUED, "owner-1", 0)
    assert r.get(redis_keys.job_input(job_id)) == "RIFF" and 0 < r.ttl(redis_keys.job_input(job_id)) <= 600
    assert 0 < r.ttl(redis_keys.job(job_id)) <= 3600
    assert r.lrange(QUEUE, 0, -1) == [f"message of {job_id}"]
    assert r.zscore(redis_keys.JOBS_INDEX, job_id) == 1795000000.0
    assert r.zscore(redis_keys.owner_jobs("owner-1"), job_id) == 1795000000.0
    for index in (redis_keys.JOBS_INDEX, redis_keys.owner_jobs("owner-1")):
        assert 0 < r.ttl(index) <= 7200


def test_create_refuses_a_full_queue_and_writes_nothing(r: redis.Redis) -> None:
    r.lpush(QUEUE, "a", "b")
    record = JobRecord(id="full", task=TaskName.EMBED, status=JobStatus.QUEUED, created_at="1.0")
    call = create_job(
        record=record, queue_lists=[QUEUE], message="m", max_queue_depth=2, job_ttl_s=60, index_ttl_s=60
    )
    assert run(r, call) == QueueFull(depth=2)
    assert sorted(r.keys("*")) == [QUEUE]


def test_an_idempotency_key_names_its_job_until_the_job_is_gone(r: redis.Redis) -> None:
    claim = IdempotencyClaim(owner="o", key="k", fingerprint="f" * 64, ttl_s=60)
    first = _new_job(r, owner="o", claim=claim)
    record = JobRecord(id="second", task=TaskName.EMBED, status=JobStatus.QUEUED, created_at="2.0", owner="o")
    call = create_job(
        record=record,
        queue_lists=[QUEUE],
        message="m",
        max_queue_depth=10,
        job_ttl_s=60,
        index_ttl_s=60,
        claim=claim,
    )
    result = run(r, call)
    assert isinstance(result, KeyInUse) and result.stored.job_id == first
    assert result.stored.fingerprint == claim.fingerprint
    assert not r.exists(redis_keys.job("second"))
    # A deleted job frees its key, as an expired one does.
    assert run(r, delete_job(job_id=first)) is DeleteOutcome.DELETED
    assert run(r, call) == Created()


def test_start_then_finish_moves_queued_to_running_to_succeeded(r: redis.Redis) -> None:
    job_id = _new_job(r)
    started = _start(r, job_id)
    assert (started.outcome, started.attempt) == (StartOutcome.STARTED, 1)
    # The started job's record comes back with the transition (the worker's one round trip).
    assert started.record == _record(r, job_id)
    assert started.record.status is JobStatus.RUNNING and started.record.input == {"texts": ["a"]}
    assert r.sismember(redis_keys.RUNNING_SET, job_id)
    assert (
        _finish(r, job_id, JobStatus.SUCCEEDED, result={"dimension": 3}, batch_size=4)
        is FinishOutcome.FINISHED
    )
    record = _record(r, job_id)
    assert record.status is JobStatus.SUCCEEDED and record.result == {"dimension": 3}
    assert record.batch_size == 4
    assert record.started_at == "1795000001.0" and record.finished_at == "1795000002.0"
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)


def test_a_finished_job_never_moves_again(r: redis.Redis) -> None:
    job_id = _new_job(r)
    _start(r, job_id)
    error = {"code": "model_error", "message": "x"}
    assert _finish(r, job_id, JobStatus.FAILED, error=error) is FinishOutcome.FINISHED
    # A second finish (e.g. a redelivered message) and a late start change nothing.
    assert _finish(r, job_id, JobStatus.SUCCEEDED, result={"late": True}) is FinishOutcome.ALREADY_ENDED
    late = _start(r, job_id)
    assert (late.outcome, late.status) == (StartOutcome.ALREADY_ENDED, JobStatus.FAILED)
    record = _record(r, job_id)
    assert record.status is JobStatus.FAILED and record.result is None and record.error == error


def test_ending_a_job_gives_every_key_it_owns_a_ttl_and_drops_its_input(r: redis.Redis) -> None:
    job_id = _new_job(r, audio=b"audio")
    channel = r.pubsub()
    channel.subscribe(redis_keys.JOB_DONE_CHANNEL)
    assert channel.get_message(timeout=5)["type"] == "subscribe"
    _start(r, job_id)
    assert _finish(r, job_id, JobStatus.SUCCEEDED, result={}, blob=b"RIFF", content_type="audio/wav") is (
        FinishOutcome.FINISHED
    )
    message = channel.get_message(timeout=5)
    channel.close()
    assert message is not None and message["data"] == job_id
    keys = JobKeys.of(job_id)
    assert not r.exists(keys.input)
    assert r.get(keys.result) == "RIFF"
    for key in keys.all():
        if r.exists(key):
            assert 0 < r.ttl(key) <= TTL, key
    # Noted for the indexes' tidying once the record has expired.
    assert r.zscore(redis_keys.ENDED_JOBS, f" {job_id}") == 1795000002.0 + TTL


def test_start_counts_attempts_and_fails_the_job_after_the_last(r: redis.Redis) -> None:
    job_id = _new_job(r)
    assert _start(r, job_id, max_attempts=2).attempt == 1
    # Redelivery of a running job whose worker was lost is allowed up to max attempts...
    assert _start(r, job_id, max_attempts=2).attempt == 2
    # ...and the next one fails it, without counting a third attempt.
    exhausted = _start(r, job_id, max_attempts=2)
    assert (exhausted.outcome, exhausted.attempt) == (StartOutcome.ATTEMPTS_EXHAUSTED, 2)
    record = _record(r, job_id)
    assert (record.status, record.attempts, record.error) == (JobStatus.FAILED, 2, LOST)
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)
    assert 0 < r.ttl(redis_keys.job(job_id)) <= TTL


def test_scripts_report_a_missing_job(r: redis.Redis) -> None:
    assert _start(r, "nope").outcome is StartOutcome.NOT_FOUND
    assert _finish(r, "nope", JobStatus.SUCCEEDED) is FinishOutcome.NOT_FOUND
    assert run(r, cancel_job(job_id="nope", result_ttl_s=TTL)).outcome is CancelOutcome.NOT_FOUND
    assert run(r, delete_job(job_id="nope")) is DeleteOutcome.NOT_FOUND
    assert not r.exists(redis_keys.job("nope"))


def test_a_duplicate_delivery_is_refused_while_the_running_worker_beats(r: redis.Redis) -> None:
    job_id = _new_job(r)
    alive = f"alive-{job_id}"
    r.set(redis_keys.worker(alive), "{}", ex=60)
    assert _start(r, job_id, worker=alive).attempt == 1
    # A second message (re-published, or restored by the broker) while its worker beats: refused,
    # and no attempt is counted.
    duplicate = _start(r, job_id, worker="other")
    assert (duplicate.outcome, duplicate.running_on) == (StartOutcome.RUNNING_ELSEWHERE, alive)
    assert _record(r, job_id).attempts == 1 and _record(r, job_id).worker == alive
    # Its worker's heartbeat key expired (the worker was killed): the next delivery starts it again.
    r.delete(redis_keys.worker(alive))
    assert _start(r, job_id, worker="other").attempt == 2
    assert _finish(r, job_id, JobStatus.SUCCEEDED, result={"ok": True}) is FinishOutcome.FINISHED


def test_a_cancel_requested_job_finishes_canceled_whatever_the_worker_brings(r: redis.Redis) -> None:
    job_id = _new_job(r)
    _start(r, job_id)
    requested = run(r, cancel_job(job_id=job_id, result_ttl_s=TTL))
    assert (requested.outcome, requested.status) == (CancelOutcome.REQUESTED, JobStatus.RUNNING)
    assert _record(r, job_id).cancel_requested
    outcome = _finish(r, job_id, JobStatus.SUCCEEDED, result={"text": "late"}, blob=b"RIFF")
    assert outcome is FinishOutcome.CANCELED_INSTEAD
    record = _record(r, job_id)
    assert record.status is JobStatus.CANCELED and record.result is None and record.error is None
    assert not r.exists(redis_keys.job_result_blob(job_id))
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)


def test_cancel_of_a_queued_job_ends_it_and_a_second_cancel_is_refused(r: redis.Redis) -> None:
    job_id = _new_job(r, audio=b"x")
    canceled = run(r, cancel_job(job_id=job_id, result_ttl_s=TTL))
    assert (canceled.outcome, canceled.status) == (CancelOutcome.CANCELED, JobStatus.QUEUED)
    assert _record(r, job_id).status is JobStatus.CANCELED
    assert not r.exists(redis_keys.job_input(job_id))
    again = run(r, cancel_job(job_id=job_id, result_ttl_s=TTL))
    assert (again.outcome, again.status) == (CancelOutcome.ALREADY_ENDED, JobStatus.CANCELED)
    # Its message is still queued; the worker's start skips it.
    assert _start(r, job_id).outcome is StartOutcome.ALREADY_ENDED


def test_delete_removes_everything_and_a_late_outcome_does_not_bring_it_back(r: redis.Redis) -> None:
    job_id = _new_job(r, owner="o", audio=b"x")
    _start(r, job_id)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_keys.CANCEL_CHANNEL)
    assert run(r, delete_job(job_id=job_id)) is DeleteOutcome.DELETED
    message = None
    for _ in range(10):
        message = message or pubsub.get_message(timeout=0.5)
    pubsub.close()
    assert message is not None and message["data"] == job_id  # its worker is told to stop
    assert not any(r.exists(key) for key in JobKeys.of(job_id).all())
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)
    assert r.zscore(redis_keys.JOBS_INDEX, job_id) is None
    assert r.zscore(redis_keys.owner_jobs("o"), job_id) is None
    # The worker's outcome arrives after the delete: nothing is written, the blob included.
    assert _finish(r, job_id, JobStatus.SUCCEEDED, result={}, blob=b"RIFF") is FinishOutcome.NOT_FOUND
    assert _start(r, job_id).outcome is StartOutcome.NOT_FOUND
    assert not any(r.exists(key) for key in JobKeys.of(job_id).all())


def test_a_create_takes_expired_jobs_out_of_the_indexes(r: redis.Redis) -> None:
    old = _new_job(r, owner="o")
    _start(r, old)
    _finish(r, old, JobStatus.SUCCEEDED, result={})
    r.delete(redis_keys.job(old))  # as its TTL would
    # Due once the record's expiry (finished + TTL) has passed: a job created later tidies it.
    record = JobRecord(
        id="later",
        task=TaskName.EMBED,
        status=JobStatus.QUEUED,
        created_at=str(1795000002.0 + TTL + 1),
        owner="o",
    )
    call = create_job(
        record=record, queue_lists=[QUEUE], message="m", max_queue_depth=10, job_ttl_s=60, index_ttl_s=7200
    )
    assert run(r, call) == Created()
    assert r.zscore(redis_keys.JOBS_INDEX, old) is None
    assert r.zscore(redis_keys.owner_jobs("o"), old) is None
    assert r.zscore(redis_keys.ENDED_JOBS, f"o {old}") is None
    assert r.zscore(redis_keys.JOBS_INDEX, "later") is not None


def test_reap_claims_a_lost_attempt_once(r: redis.Redis) -> None:
    job_id = _new_job(r)
    alive = f"alive-{job_id}"
    r.set(redis_keys.worker(alive), "{}", ex=60)
    _start(r, job_id, worker=alive)
    assert run(r, reap_job(job_id=job_id, reaper="a", claim_ttl_s=60)).outcome is ReapOutcome.ALIVE
    r.delete(redis_keys.worker(alive))
    lost = run(r, reap_job(job_id=job_id, reaper="a", claim_ttl_s=60))
    assert (lost.outcome, lost.task, lost.worker, lost.attempt) == (
        ReapOutcome.LOST,
        TaskName.EMBED,
        alive,
        1,
    )
    assert 0 < r.ttl(redis_keys.reap_claim(job_id, 1)) <= 60
    again = run(r, reap_job(job_id=job_id, reaper="b", claim_ttl_s=60))
    assert again.outcome is ReapOutcome.CLAIMED_ELSEWHERE
    _finish(r, job_id, JobStatus.SUCCEEDED, result={})
    r.sadd(redis_keys.RUNNING_SET, job_id)  # a stale entry
    assert run(r, reap_job(job_id=job_id, reaper="a", claim_ttl_s=60)).outcome is ReapOutcome.NOT_RUNNING
    assert not r.sismember(redis_keys.RUNNING_SET, job_id)


def test_scripts_run_again_after_redis_forgets_them(r: redis.Redis) -> None:
    r.script_flush()
    job_id = _new_job(r)  # EVALSHA answers NOSCRIPT; run() falls back to EVAL
    assert _start(r, job_id).outcome is StartOutcome.STARTED
