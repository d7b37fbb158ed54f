"""Stopping running jobs: cancel requests and per-task time limits.

Each running job of this worker has a JobControl: its deadline (start + the task's
AMULET_<TASK>_TIME_LIMIT_S) and whether a client asked to cancel it. The cancel watcher thread
marks controls from the gateway's ``amulet:cancel`` messages, and also polls the jobs'
``cancel_requested`` field every heartbeat interval, so a message missed while Redis was away
(pub/sub is not durable) still cancels. A job whose record is gone (deleted by a client) counts
as canceled: nobody wants its outcome any more.

A control is honoured at three points, as far as each model allows:

- a job still waiting in the batcher is withdrawn (worker/runner.py, worker/batching.py);
- generation (generate; Whisper in transcribe) gets ``stopping_criteria()``, which stops the
  forward loop at the next token once every job of the batch is stopped; jobs that share a
  batch with a job still wanted run on, and their own outcome is discarded afterwards;
- after the batch the runner ends a stopped job ``canceled`` or ``failed`` (``timeout``) and
  discards its output. A single forward pass (embed, classify, synthesize, Whisper's encoder)
  is never interrupted: those jobs are stopped only when it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import redis
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from shared import redis_keys
from shared.redis_protocol import as_text

log = logging.getLogger(__name__)


@dataclass
class JobControl:
    job_id: str
    limit_s: float
    started: float = field(default_factory=time.monotonic)
    canceled: threading.Event = field(default_factory=threading.Event)

    @property
    def deadline(self) -> float:
        return self.started + self.limit_s

    def timed_out(self) -> bool:
        return time.monotonic() >= self.deadline

    def stopped(self) -> bool:
        return self.canceled.is_set() or self.timed_out()


# The controls of the batch the calling thread (the batcher's) is running: handlers read them
# through stopping_criteria() without the handler interface knowing about jobs.
_current = threading.local()


@contextmanager
def running_batch(controls: Sequence[JobControl | None]) -> Iterator[None]:
    previous = getattr(_current, "controls", None)
    _current.controls = list(controls)
    try:
        yield
    finally:
        _current.controls = previous


def batch_stopped(controls: Sequence[JobControl | None] | None) -> bool:
    """True when every job of the batch was canceled or is past its deadline (none unknown)."""
    if not controls:
        return False
    return all(c is not None and c.stopped() for c in controls)


class _StopWhenBatchStopped(StoppingCriteria):
    def __init__(self, controls: Sequence[JobControl | None]) -> None:
        self.controls = list(controls)

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.BoolTensor:
        stop = torch.full(
            (input_ids.shape[0],), batch_stopped(self.controls), dtype=torch.bool, device=input_ids.device
        )
        return cast(torch.BoolTensor, stop)


def stopping_criteria() -> StoppingCriteriaList:
    """For ``generate(stopping_criteria=...)``: stop once the current batch's jobs are all stopped."""
    return StoppingCriteriaList([_StopWhenBatchStopped(getattr(_current, "controls", None) or [])])


class JobControls:
    """The controls of this worker's running jobs, by id, and the thread that cancels them."""

    def __init__(self, client: redis.Redis, poll_interval_s: float) -> None:
        self.redis = client
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._controls: dict[str, JobControl] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cancel-watcher", daemon=True)

    def register(self, job_id: str, limit_s: float) -> JobControl:
        control = JobControl(job_id, limit_s)
        with self._lock:
            self._controls[job_id] = control
        return control

    def release(self, job_id: str) -> None:
        with self._lock:
            self._controls.pop(job_id, None)

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            control = self._controls.get(job_id)
        if control is None or control.canceled.is_set():
            return False
        control.canceled.set()
        log.info("job %s: cancel requested; stopping it", job_id)
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_interval_s + 5)

    # -- watcher thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        pubsub = None
        failing = False
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(redis_keys.CANCEL_CHANNEL)
                    # Anything requested while unsubscribed is caught by the poll right away.
                    self._poll()
                next_poll = time.monotonic() + self.poll_interval_s
                while not self._stop.is_set() and (left := next_poll - time.monotonic()) > 0:
                    message = pubsub.get_message(timeout=min(left, 1.0))
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self.cancel(as_text(data))
                self._poll()
                if failing:
                    log.info("cancel watcher: Redis reachable again")
                failing = False
            except Exception as exc:  # the watcher must outlive Redis outages
                if not failing:
                    log.warning("cancel watcher: %s; retrying every %.1f s", exc, self.poll_interval_s)
                failing = True
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001 - already broken
                        pass
                pubsub = None
                self._stop.wait(self.poll_interval_s)
        if pubsub is not None:
            pubsub.close()

    def _poll(self) -> None:
        with self._lock:
            ids = [job_id for job_id, c in self._controls.items() if not c.canceled.is_set()]
        if not ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(redis_keys.job(job_id), ["status", redis_keys.CANCEL_REQUESTED_FIELD])
        for job_id, (status, flag) in zip(ids, pipe.execute(), strict=True):
            if status is None or flag in (b"1", "1"):
                self.cancel(job_id)
