"""Cross-job batching: jobs that wait together share a forward pass, and each keeps its own outcome.

End-to-end against real processes (Redis, ``python -m worker``, the gateway over HTTP) with the
real all-MiniLM-L6-v2, plus the scheduler itself (worker/batching.py) driven by plain functions
for the failure paths a real model rarely produces on demand (one poisoned input, CUDA OOM).
Timings are never asserted tightly: a lone job must run alone, a crowd must share.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from deploy.local import stack
from shared.tasks import TaskName
from tests.utils.jobs import assert_succeeded, create_json_job, run_json_job, wait_job
from worker.batch_limits import BatchLimits
from worker.batching import Batcher
from worker.handlers import TaskOutput

pytestmark = pytest.mark.timeout(300)

SENTENCES = [
    "A cat sits on the mat.",
    "Stocks fell sharply on Monday.",
    "The quick brown fox jumps over the lazy dog.",
    "Rain is expected tomorrow afternoon.",
    "She plays the violin beautifully.",
    "Amulet batches embedding jobs.",
]


class TextStack:
    def __init__(self, worker: stack.Proc, gateway: stack.Gateway) -> None:
        self.worker, self.gateway = worker, gateway
        self.procs = [worker, gateway.proc]


def _text_stack(
    redis_server: stack.RedisServer, db: int, name: str, run_dir: Path, batching: dict[str, str]
) -> Iterator[TextStack]:
    from deploy.local.tiny_models import minilm_path

    base = run_dir / name
    env = stack.worker_env(
        redis_server.url(db),
        {"embed": minilm_path()},
        queues="text",
        health_file=base / "worker-health.json",
        extra=batching,
    )
    worker = stack.start_worker(f"{name}-worker", env, base / "worker.log", redis_server.client(db))
    try:
        gateway = stack.start_gateway(
            f"{name}-gateway", redis_server.url(db), base / "gateway.log", {"AMULET_REQUIRED_QUEUES": "text"}
        )
    except BaseException:
        worker.stop(timeout=30)
        raise
    yield TextStack(worker, gateway)
    gateway.stop()
    worker.stop(timeout=30)


@pytest.fixture(scope="module")
def batching_stack(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[TextStack]:
    # A generous wait so that jobs submitted together certainly meet, however slow the machine.
    yield from _text_stack(
        redis_server,
        2,
        "batching",
        run_dir,
        {"AMULET_EMBED_MAX_BATCH_SIZE": "8", "AMULET_EMBED_MAX_WAIT_MS": "1500"},
    )


@pytest.fixture(scope="module")
def unbatched_stack(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[TextStack]:
    yield from _text_stack(redis_server, 3, "unbatched", run_dir, {"AMULET_EMBED_MAX_BATCH_SIZE": "1"})


def _submit_together(client: httpx.Client, texts: list[str]) -> list[dict]:
    with ThreadPoolExecutor(len(texts)) as pool:
        created = list(pool.map(lambda t: create_json_job(client, "embed", {"texts": [t]}), texts))
    return [wait_job(client, job["id"]) for job in created]


def _max_abs_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def test_concurrent_embed_jobs_share_a_batch_and_each_gets_its_own_embedding(
    batching_stack: TextStack, unbatched_stack: TextStack
) -> None:
    with batching_stack.gateway.client() as c:
        jobs = _submit_together(c, SENTENCES)
    with unbatched_stack.gateway.client() as c:
        alone = [run_json_job(c, "embed", {"texts": [t]}) for t in SENTENCES]

    sizes = [job["timings"]["batch_size"] for job in jobs]
    assert max(sizes) > 1, f"no two of {len(jobs)} concurrent jobs shared a batch: {sizes}"
    assert all(1 <= s <= 8 for s in sizes), sizes
    for job, single, text in zip(jobs, alone, SENTENCES, strict=True):
        batched_vector = assert_succeeded(job)["embeddings"][0]
        single_vector = assert_succeeded(single)["embeddings"][0]
        assert single["timings"]["batch_size"] == 1
        # Same sentence, same vector: padding next to longer sentences must not leak into it.
        assert _max_abs_diff(batched_vector, single_vector) < 1e-4, text
    # And the vectors are not all the same one (each job got its own row of the batch).
    firsts = {round(assert_succeeded(j)["embeddings"][0][0], 5) for j in jobs}
    assert len(firsts) == len(SENTENCES)


def test_a_lone_job_runs_alone_after_at_most_max_wait(batching_stack: TextStack) -> None:
    with batching_stack.gateway.client() as c:
        job = run_json_job(c, "embed", {"texts": ["Nobody else is here."]})
    assert assert_succeeded(job)["dimension"] == 384
    assert job["timings"]["batch_size"] == 1


def test_batching_off_runs_every_job_alone(unbatched_stack: TextStack) -> None:
    with unbatched_stack.gateway.client() as c:
        jobs = _submit_together(c, SENTENCES[:4])
    for job in jobs:
        result = assert_succeeded(job)
        assert len(result["embeddings"][0]) == 384
        assert job["timings"]["batch_size"] == 1


# -- the scheduler on its own ------------------------------------------------------------------
def _echo_unless(poison: str, oom_above: int | None = None, calls: list[list[str]] | None = None):
    def run(task: TaskName, items: list[str]) -> list[TaskOutput]:
        if calls is not None:
            calls.append(list(items))
        if oom_above is not None and len(items) > oom_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by the batch size)")
        if poison in items:
            raise ValueError(f"cannot run {poison!r}")
        return [TaskOutput(result={"echo": item}) for item in items]

    return run


def _submit_all(batcher: Batcher, items: list[str]) -> list:
    start = threading.Barrier(len(items))

    def one(item: str):
        start.wait()
        return batcher.submit(TaskName.EMBED, item)

    with ThreadPoolExecutor(len(items)) as pool:
        futures = list(pool.map(one, items))
    return futures


def test_a_failing_input_inside_a_batch_fails_only_its_own_job() -> None:
    calls: list[list[str]] = []
    limits = {TaskName.EMBED: BatchLimits(max_batch_size=4, max_wait_ms=2000)}
    batcher = Batcher(_echo_unless("bad", calls=calls), limits, capacity=4)
    batcher.start()
    try:
        futures = _submit_all(batcher, ["a", "bad", "c", "d"])
        outcomes = {}
        for future in futures:
            try:
                outcome = future.result(timeout=30)
                outcomes[outcome.output.result["echo"]] = outcome.batch_size
            except ValueError as exc:
                outcomes["error"] = str(exc)
    finally:
        batcher.stop()
    assert outcomes == {"a": 1, "c": 1, "d": 1, "error": "cannot run 'bad'"}
    assert len(calls[0]) == 4, calls  # tried together first, then one by one
    assert sorted(len(c) for c in calls[1:]) == [1, 1, 1, 1]


def test_cuda_out_of_memory_splits_the_batch_instead_of_failing_it() -> None:
    limits = {TaskName.EMBED: BatchLimits(max_batch_size=8, max_wait_ms=2000)}
    batcher = Batcher(_echo_unless("never", oom_above=2), limits, capacity=8)
    batcher.start()
    try:
        items = [f"item-{i}" for i in range(8)]
        outcomes = [f.result(timeout=30) for f in _submit_all(batcher, items)]
    finally:
        batcher.stop()
    assert sorted(o.output.result["echo"] for o in outcomes) == sorted(items)
    assert {o.batch_size for o in outcomes} == {2}


def test_a_single_input_that_runs_out_of_memory_fails_with_that_error() -> None:
    limits = {TaskName.EMBED: BatchLimits(max_batch_size=2, max_wait_ms=0)}
    batcher = Batcher(_echo_unless("never", oom_above=0), limits, capacity=2)
    batcher.start()
    try:
        future = batcher.submit(TaskName.EMBED, "huge")
        with pytest.raises(torch.cuda.OutOfMemoryError):
            future.result(timeout=30)
    finally:
        batcher.stop()


def test_a_full_batch_does_not_wait_for_max_wait() -> None:
    # capacity reached: no other job can arrive, so the batch starts at once (not after 60 s).
    limits = {TaskName.EMBED: BatchLimits(max_batch_size=8, max_wait_ms=60_000)}
    batcher = Batcher(_echo_unless("never"), limits, capacity=3)
    batcher.start()
    try:
        outcomes = [f.result(timeout=20) for f in _submit_all(batcher, ["x", "y", "z"])]
    finally:
        batcher.stop()
    assert [o.batch_size for o in outcomes] == [3, 3, 3]


def test_a_stopped_job_still_waiting_is_dropped_not_run() -> None:
    from worker.batching import JobStopped
    from worker.stopping import JobControl

    limits = {TaskName.EMBED: BatchLimits(max_batch_size=4, max_wait_ms=500)}
    ran: list[list[str]] = []

    def run(task: TaskName, items: list[str]) -> list[TaskOutput]:
        ran.append(list(items))
        return [TaskOutput(result={"echo": item}) for item in items]

    batcher = Batcher(run, limits, capacity=3)
    batcher.start()
    try:
        canceled, expired, kept = JobControl("a", 60), JobControl("b", 0.0), JobControl("c", 60)
        f_canceled = batcher.submit(TaskName.EMBED, "canceled", canceled)
        canceled.canceled.set()
        assert batcher.withdraw(f_canceled)
        with pytest.raises(JobStopped):
            f_canceled.result(timeout=1)
        f_expired = batcher.submit(TaskName.EMBED, "expired", expired)
        f_kept = batcher.submit(TaskName.EMBED, "kept", kept)
        batcher.submit(TaskName.EMBED, "third")
        assert f_kept.result(timeout=10).output.result == {"echo": "kept"}
        with pytest.raises(JobStopped):
            f_expired.result(timeout=10)
        assert ran == [["kept", "third"]]
        assert not batcher.withdraw(f_kept)
    finally:
        batcher.stop()
