"""Cross-job dynamic batching: jobs of the same task that wait together share one forward pass.

Each Celery task thread prepares its job (decode, validate) and ``submit``s the prepared item,
then blocks on the returned future. One scheduler thread per device runs ONE batch at a time:
it takes the task of the oldest waiting item, lets up to ``max_batch_size`` items of that task
gather for at most ``max_wait_ms`` after the first one arrived, and calls the handler once
with all of them. Every job still gets its own outcome:

- an exception from a batch re-runs its items one by one, so only the bad input fails;
- a CUDA out-of-memory error splits the batch in halves (down to single items) instead of
  failing it; a single item that still runs out of memory fails with that error.

A job submitted with a JobControl (worker/stopping.py) that is canceled or past its deadline
while it still waits is dropped (its future raises JobStopped) instead of being run; the
controls of the running batch are visible to the handler through ``stopping.running_batch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from shared.tasks import TaskName
from worker.batch_limits import OFF, BatchLimits
from worker.handlers import TaskOutput
from worker.stopping import JobControl, running_batch

log = logging.getLogger(__name__)

RunBatch = Callable[[TaskName, list[Any]], list[TaskOutput]]


@dataclass(frozen=True)
class BatchOutcome:
    output: TaskOutput
    batch_size: int  # how many jobs shared the forward pass that produced this output


class JobStopped(Exception):
    """The job was canceled or reached its time limit before its batch ran."""


@dataclass
class _Waiting:
    task: TaskName
    item: Any
    control: JobControl | None = None
    arrived: float = field(default_factory=time.monotonic)
    future: Future[BatchOutcome] = field(default_factory=Future)


class Batcher:
    """One per device. ``capacity`` is how many jobs can be in flight at once (Celery's
    concurrency): once that many wait, no other job can arrive, so waiting longer is pointless."""

    def __init__(
        self, run: RunBatch, limits: Mapping[TaskName, BatchLimits], capacity: int, name: str = "batcher"
    ) -> None:
        self._run = run
        self._limits = dict(limits)
        self._capacity = max(1, capacity)
        self._waiting: dict[TaskName, deque[_Waiting]] = {}
        self._count = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def submit(self, task: TaskName, item: Any, control: JobControl | None = None) -> Future[BatchOutcome]:
        waiting = _Waiting(task, item, control)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the batcher is stopping")
            self._waiting.setdefault(task, deque()).append(waiting)
            self._count += 1
            self._cond.notify_all()
        return waiting.future

    def withdraw(self, future: Future[BatchOutcome]) -> bool:
        """Take a job out if it still waits (its future then raises JobStopped); False once its
        batch has been taken."""
        with self._cond:
            for queue in self._waiting.values():
                for waiting in queue:
                    if waiting.future is future:
                        queue.remove(waiting)
                        self._count -= 1
                        future.set_exception(JobStopped())
                        return True
        return False

    def limits(self, task: TaskName) -> BatchLimits:
        return self._limits.get(task, OFF)

    # -- scheduler thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._execute(batch[0].task, batch)

    def _drop_stopped(self) -> None:
        for queue in self._waiting.values():
            for waiting in [w for w in queue if w.control is not None and w.control.stopped()]:
                queue.remove(waiting)
                self._count -= 1
                waiting.future.set_exception(JobStopped())

    def _next_batch(self) -> list[_Waiting] | None:
        with self._cond:
            while True:
                self._drop_stopped()
                while not self._count:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    self._drop_stopped()
                # Oldest first across tasks, so a busy task cannot starve a quiet one.
                queue = min((q for q in self._waiting.values() if q), key=lambda q: q[0].arrived)
                limits = self.limits(queue[0].task)
                deadline = queue[0].arrived + limits.max_wait_ms / 1000.0
                while (
                    len(queue) < limits.max_batch_size
                    and self._count < self._capacity
                    and not self._stopping
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                # Jobs stopped while company gathered are dropped; that may empty the batch.
                self._drop_stopped()
                batch = [queue.popleft() for _ in range(min(len(queue), limits.max_batch_size))]
                self._count -= len(batch)
                if batch:
                    return batch

    def _execute(self, task: TaskName, batch: list[_Waiting]) -> None:
        try:
            with running_batch([w.control for w in batch]):
                outputs = self._run(task, [w.item for w in batch])
            if len(outputs) != len(batch):
                raise RuntimeError(
                    f"the {task.value} handler returned {len(outputs)} outputs for {len(batch)}"
                )
        except torch.cuda.OutOfMemoryError as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            torch.cuda.empty_cache()
            half = len(batch) // 2
            log.warning("%s batch of %d ran out of GPU memory; splitting it", task.value, len(batch))
            self._execute(task, batch[:half])
            self._execute(task, batch[half:])
            return
        except BaseException as exc:  # noqa: BLE001 - every job must get an outcome
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            log.warning(
                "%s batch of %d failed (%s: %s); running its jobs one by one",
                task.value,
                len(batch),
                type(exc).__name__,
                exc,
            )
            for waiting in batch:
                self._execute(task, [waiting])
            return
        for waiting, output in zip(batch, outputs, strict=True):
            waiting.future.set_result(BatchOutcome(output, len(batch)))
