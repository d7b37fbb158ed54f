"""The job state machine, driven by hypothesis: random sequences of create, start, finish (succeed,
fail, cancel), cancel, delete, worker loss, reap and expiry against the real Redis scripts
(shared/redis_protocol.py), checked against a model after every step.

Invariants, whatever the order:
- a status never goes back (queued -> running -> terminal), and a job that is gone (deleted or
  expired) never comes back;
- one outcome per job: once terminal, its status, result, error and finish time never change, and
  at most one transition reports ending it;
- attempts never exceed AMULET_MAX_ATTEMPTS;
- every key a job owns has a TTL (the record from its creation, everything once it is terminal),
  and no terminal job is left in the running set.

Expiry is simulated by deleting the job's keys, as Redis does when their TTLs run out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from deploy.local.stack import RedisServer
from shared import redis_keys
from shared.job_record import JobRecord
from shared.jobs import STATUS_RANK, JobStatus
from shared.redis_protocol import (
    CancelOutcome,
    Created,
    DeleteOutcome,
    FinishOutcome,
    JobKeys,
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

MAX_ATTEMPTS = 2
TTL = 300
WORKERS = ["w1", "w2", "w3"]
OWNERS = ["", "alice", "bob"]
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
_ids = itertools.count()


@dataclass
class ModelJob:
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    worker: str | None = None
    cancel_requested: bool = False
    exists: bool = True
    endings: int = 0
    rank: int = 0  # of the status last seen in Redis
    final: tuple[object, ...] | None = None  # what a terminal job looks like, for good


@pytest.fixture
def db(redis_server: RedisServer) -> redis.Redis:
    client = redis_server.client(db=7)
    client.flushdb()
    return client


def test_job_state_machine(db: redis.Redis) -> None:
    class JobStateMachine(RuleBasedStateMachine):
        jobs = Bundle("jobs")

        def __init__(self) -> None:
            super().__init__()
            self.r = db
            self.r.flushdb()
            self.model: dict[str, ModelJob] = {}
            self.alive: set[str] = set()
            self.claimed: set[tuple[str, int]] = set()

        def _alive(self, worker: str) -> None:
            self.r.set(redis_keys.worker(worker), "{}")
            self.alive.add(worker)

        @rule(target=jobs, owner=st.sampled_from(OWNERS), audio=st.booleans())
        def create(self, owner: str, audio: bool) -> str:
            job_id = f"job{next(_ids)}"
            record = JobRecord(
                id=job_id, task=TaskName.EMBED, status=JobStatus.QUEUED, created_at="1000.0", owner=owner
            )
            call = create_job(
                record=record,
                queue_lists=["queue"],
                message=job_id,
                max_queue_depth=10_000,
                job_ttl_s=3600,
                index_ttl_s=7200,
                input_blob=b"audio" if audio else None,
                input_ttl_s=600,
            )
            assert run(self.r, call) == Created()
            self.model[job_id] = ModelJob()
            return job_id

        @rule(job_id=jobs, worker=st.sampled_from(WORKERS))
        def start(self, job_id: str, worker: str) -> None:
            self._start(job_id, worker)

        @rule(job_id=jobs, worker=st.sampled_from(WORKERS))
        def lose_worker_and_redeliver(self, job_id: str, worker: str) -> None:
            """The job's worker dies mid-job and its message reaches another worker."""
            lost = self.model[job_id].worker
            if lost is not None:
                self.lose_worker(lost)
            self._start(job_id, worker)

        def _start(self, job_id: str, worker: str) -> None:
            self._alive(worker)  # a worker taking a job beats
            m = self.model[job_id]
            started = run(
                self.r,
                start_job(
                    job_id=job_id,
                    worker=worker,
                    model="m",
                    max_attempts=MAX_ATTEMPTS,
                    result_ttl_s=TTL,
                    exhausted_error={"code": "worker_lost", "message": "lost"},
                    now="2000.0",
                ),
            )
            if not m.exists:
                assert started.outcome is StartOutcome.NOT_FOUND
            elif m.status in TERMINAL:
                assert (started.outcome, started.status) == (StartOutcome.ALREADY_ENDED, m.status)
            elif m.status is JobStatus.RUNNING and m.worker in self.alive:
                assert (started.outcome, started.running_on) == (StartOutcome.RUNNING_ELSEWHERE, m.worker)
            elif m.attempts >= MAX_ATTEMPTS:
                assert started.outcome is StartOutcome.ATTEMPTS_EXHAUSTED
                m.status, m.endings = JobStatus.FAILED, m.endings + 1
            else:
                assert (started.outcome, started.attempt) == (StartOutcome.STARTED, m.attempts + 1)
                assert started.record is not None and started.record.status is JobStatus.RUNNING
                m.status, m.attempts, m.worker = JobStatus.RUNNING, m.attempts + 1, worker

        @rule(job_id=jobs, status=st.sampled_from(TERMINAL), blob=st.booleans())
        def finish(self, job_id: str, status: JobStatus, blob: bool) -> None:
            m = self.model[job_id]
            outcome = run(
                self.r,
                finish_job(
                    job_id=job_id,
                    status=status,
                    result_ttl_s=TTL,
                    result={"by": status.value} if status is JobStatus.SUCCEEDED else None,
                    error={"code": "model_error", "message": "x"} if status is JobStatus.FAILED else None,
                    blob=b"RIFF" if blob else None,
                    now="3000.0",
                ),
            )
            if not m.exists:
                assert outcome is FinishOutcome.NOT_FOUND
            elif m.status in TERMINAL:
                assert outcome is FinishOutcome.ALREADY_ENDED
            elif m.status is JobStatus.RUNNING and m.cancel_requested and status is not JobStatus.CANCELED:
                assert outcome is FinishOutcome.CANCELED_INSTEAD
                m.status, m.endings = JobStatus.CANCELED, m.endings + 1
            else:
                assert outcome is FinishOutcome.FINISHED
                m.status, m.endings = status, m.endings + 1

        @rule(job_id=jobs)
        def cancel(self, job_id: str) -> None:
            m = self.model[job_id]
            result = run(self.r, cancel_job(job_id=job_id, result_ttl_s=TTL, now="2500.0"))
            if not m.exists:
                assert result.outcome is CancelOutcome.NOT_FOUND
            elif m.status is JobStatus.QUEUED:
                assert result.outcome is CancelOutcome.CANCELED
                m.status, m.endings = JobStatus.CANCELED, m.endings + 1
            elif m.status is JobStatus.RUNNING:
                assert result.outcome is CancelOutcome.REQUESTED
                m.cancel_requested = True
            else:
                assert (result.outcome, result.status) == (CancelOutcome.ALREADY_ENDED, m.status)

        @rule(job_id=jobs)
        def delete(self, job_id: str) -> None:
            m = self.model[job_id]
            outcome = run(self.r, delete_job(job_id=job_id))
            assert outcome is (DeleteOutcome.DELETED if m.exists else DeleteOutcome.NOT_FOUND)
            m.exists = False

        @rule(job_id=jobs)
        def expire(self, job_id: str) -> None:
            """Time passes beyond the job's TTLs: Redis drops every key of it that has one."""
            for key in JobKeys.of(job_id).all():
                if self.r.ttl(key) > 0:
                    self.r.delete(key)
            self.model[job_id].exists = False

        @rule(worker=st.sampled_from(WORKERS))
        def lose_worker(self, worker: str) -> None:
            self.r.delete(redis_keys.worker(worker))
            self.alive.discard(worker)

        @rule(job_id=jobs, reaper=st.sampled_from(WORKERS))
        def reap(self, job_id: str, reaper: str) -> None:
            m = self.model[job_id]
            found = run(self.r, reap_job(job_id=job_id, reaper=reaper, claim_ttl_s=60))
            if not m.exists or m.status is not JobStatus.RUNNING:
                assert found.outcome is ReapOutcome.NOT_RUNNING
                assert not self.r.sismember(redis_keys.RUNNING_SET, job_id)
            elif m.worker in self.alive:
                assert found.outcome is ReapOutcome.ALIVE
            elif (job_id, m.attempts) in self.claimed:
                assert found.outcome is ReapOutcome.CLAIMED_ELSEWHERE
            else:
                assert (found.outcome, found.attempt) == (ReapOutcome.LOST, m.attempts)
                self.claimed.add((job_id, m.attempts))

        @invariant()
        def redis_matches_the_model(self) -> None:
            for job_id, m in self.model.items():
                fields = self.r.hgetall(redis_keys.job(job_id))
                if not m.exists:
                    assert not fields, f"{job_id} came back after it was gone: {fields}"
                    continue
                record = JobRecord.from_hash(fields)
                assert record.status is m.status
                assert STATUS_RANK[record.status] >= m.rank, f"{job_id} went back to {record.status}"
                m.rank = STATUS_RANK[record.status]
                assert record.attempts == m.attempts <= MAX_ATTEMPTS
                assert m.endings <= 1
                if m.status in TERMINAL:
                    seen = (record.status, record.result, record.error, record.finished_at)
                    if m.final is None:
                        m.final = seen
                    assert seen == m.final, f"{job_id} changed after it ended"
                    assert not self.r.sismember(redis_keys.RUNNING_SET, job_id)

        @invariant()
        def every_key_has_a_ttl(self) -> None:
            for key in self.r.scan_iter("amulet:*"):
                # The running set is shared (a job leaves it when it ends); the heartbeat keys
                # are this test's stand-ins for the workers'.
                if key == redis_keys.RUNNING_SET or key.startswith(redis_keys.WORKER_KEY_PREFIX):
                    continue
                assert self.r.ttl(key) > 0, f"{key} has no TTL"

    JobStateMachine.TestCase.settings = settings(
        max_examples=60,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    JobStateMachine.TestCase().runTest()
