"""Runs one job end to end: Redis record -> handler -> terminal status.

Every path ends in shared/redis_protocol.py's finish_job (succeeded, failed or canceled) unless
the job is already terminal or gone: an exception never leaves a job ``running`` and never escapes
to Celery, so the worker process lives on whatever a job does. A job canceled or past its task's
time limit (worker/stopping.py) ends ``canceled`` or ``failed`` with ``timeout``, its output
discarded.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from typing import Any

import redis
import torch
from pydantic import BaseModel, ValidationError

from shared import redis_keys
from shared.job_record import JobRecord
from shared.jobs import ErrorCode, JobStatus
from shared.redis_protocol import FinishOutcome, StartOutcome, finish_job, run, start_job
from shared.settings import WorkerSettings
from shared.tasks import AUDIO_INPUT_TASKS, TaskName
from worker.batching import Batcher, BatchOutcome, JobStopped
from worker.errors import InputExpired, InvalidInput, JobInputError
from worker.handlers import AnyHandler
from worker.registry import Registry
from worker.stopping import JobControl, JobControls

log = logging.getLogger(__name__)

# Error messages end up in the job record and API answers; keep them readable.
MAX_ERROR_MESSAGE = 2_000


# How often a job thread looks at its control while its job waits in the batcher.
STOP_CHECK_S = 0.2


class JobFailed(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class JobCanceled(Exception):
    """A client asked to cancel the running job."""


class JobRunner:
    """Called from Celery's task threads, several at once: prepares the job in the calling
    thread, then hands the prepared input to the device's Batcher and waits for its outcome."""

    def __init__(
        self,
        client: redis.Redis,
        settings: WorkerSettings,
        registry: Registry,
        hostname: str,
        batcher: Batcher,
        controls: JobControls,
    ) -> None:
        self.redis = client
        self.settings = settings
        self.registry = registry
        self.hostname = hostname
        self.batcher = batcher
        self.controls = controls
        # The error start_job fails a job with after AMULET_MAX_ATTEMPTS lost attempts: built once,
        # not at every start.
        attempts = settings.MAX_ATTEMPTS
        self._worker_lost = _error(
            ErrorCode.WORKER_LOST,
            f"the job's worker was lost {attempts} times (AMULET_MAX_ATTEMPTS={attempts}); "
            "it may be too large for the worker",
        )

    def run(self, job_id: str, task: TaskName) -> None:
        """Run a job; never raises (a failure is written to the job instead). ``task`` is the one
        the Celery message was routed as (one Celery task per TaskName)."""
        try:
            self._run(job_id, task)
        except Exception as exc:
            # Handler errors are handled in _execute; this is Redis trouble, a corrupt record or
            # an unserialisable result. Try to record it so the job does not stay non-terminal.
            log.exception("job %s: could not be run or recorded", job_id)
            try:
                self._fail(job_id, ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            except Exception:
                log.exception("job %s: could not record the failure either", job_id)

    def _run(self, job_id: str, task: TaskName) -> None:
        # One round trip: the start transition also answers with the record (and its cancel flag).
        started = run(
            self.redis,
            start_job(
                job_id=job_id,
                worker=self.hostname,
                model=self.registry.model(task),
                max_attempts=self.settings.MAX_ATTEMPTS,
                result_ttl_s=self.settings.RESULT_TTL_S,
                exhausted_error=self._worker_lost,
            ),
        )
        if started.outcome is StartOutcome.NOT_FOUND:
            log.warning("job %s: no record (expired, deleted or never created); dropping the message", job_id)
            return
        if started.outcome is StartOutcome.ALREADY_ENDED:
            log.info("job %s: already %s, skipping", job_id, started.status)
            return
        if started.outcome is StartOutcome.RUNNING_ELSEWHERE:
            # A second message for a job whose worker still beats (the reaper's re-publish raced
            # a worker that came back, or the broker restored an unacknowledged message).
            log.info(
                "job %s: already running on %s (alive); dropping this duplicate message",
                job_id,
                started.running_on,
            )
            return
        if started.outcome is StartOutcome.ATTEMPTS_EXHAUSTED:
            log.warning(
                "job %s: its worker was lost %s times; failed it with worker_lost", job_id, started.attempt
            )
            return
        record = started.record
        assert record is not None  # STARTED carries the record
        if record.task is not task:
            # Never expected (the gateway routes by the record's task); the record wins.
            log.warning("job %s: message routed as %s for a %s job", job_id, task.value, record.task.value)

        started_at = time.monotonic()
        log.info("job %s: %s started (attempt %s)", job_id, record.task.value, started.attempt)
        control = self.controls.register(job_id, self.settings.time_limit_for(record.task))
        try:
            # A cancel requested before a redelivery (the previous worker was lost) is honoured now.
            if record.cancel_requested:
                control.canceled.set()
            outcome = self._execute(record, control)
        except JobCanceled:
            self._finish_job(job_id, JobStatus.CANCELED)
            log.info("job %s: canceled after %.2f s", job_id, time.monotonic() - started_at)
            return
        except JobFailed as exc:
            self._fail(job_id, exc.code, str(exc))
            log.info(
                "job %s: failed (%s) after %.2f s: %s",
                job_id,
                exc.code.value,
                time.monotonic() - started_at,
                exc,
            )
            return
        finally:
            self.controls.release(job_id)
        self._succeed(job_id, outcome)
        log.info(
            "job %s: succeeded in %.2f s (batch of %d)",
            job_id,
            time.monotonic() - started_at,
            outcome.batch_size,
        )

    def _execute(self, record: JobRecord, control: JobControl) -> BatchOutcome:
        """Run the handler, turning every exception into a JobFailed with the right code."""
        handler = self.registry.handler(record.task)
        if handler is None:
            raise JobFailed(
                ErrorCode.TASK_DISABLED,
                f"this worker ({self.hostname}) has no model configured for {record.task.value}",
            )
        try:
            job_input, params = self._request(record, handler)
            item = handler.prepare(job_input, params)
        except JobInputError as exc:
            raise JobFailed(exc.code, exc.message) from exc
        except redis.RedisError as exc:
            raise JobFailed(ErrorCode.INTERNAL_ERROR, f"Redis error while reading the input: {exc}") from exc
        except Exception as exc:
            log.exception("job %s: preparing the input failed", record.id)
            raise JobFailed(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}") from exc
        self._check(record, control)
        outcome = self._call_model(record, item, control)
        # Generation stopped at the deadline or on cancel returns a truncated output: discard it.
        self._check(record, control)
        return outcome

    def _check(self, record: JobRecord, control: JobControl) -> None:
        """Raise JobCanceled or JobFailed(timeout) when the job must not go on (or be recorded)."""
        if control.canceled.is_set():
            raise JobCanceled()
        if control.timed_out():
            name = f"AMULET_{record.task.value.upper()}_TIME_LIMIT_S"
            raise JobFailed(
                ErrorCode.TIMEOUT,
                f"the job ran longer than its time limit ({name}={control.limit_s:g} s) and was "
                "stopped; its output was discarded",
            )

    def _wait(self, future: Future[BatchOutcome], record: JobRecord, control: JobControl) -> BatchOutcome:
        """The job's outcome; a job canceled or past its deadline while it still waits for its
        batch is withdrawn instead of run."""
        while True:
            try:
                return future.result(timeout=STOP_CHECK_S)
            except TimeoutError:
                if control.stopped() and self.batcher.withdraw(future):
                    self._check(record, control)
            except JobStopped:
                self._check(record, control)
                raise

    def _call_model(self, record: JobRecord, item: Any, control: JobControl) -> BatchOutcome:
        try:
            # The batcher re-runs a failed batch job by job, so what arrives here is this job's own error.
            return self._wait(self.batcher.submit(record.task, item, control), record, control)
        except (JobCanceled, JobFailed):
            raise
        except JobInputError as exc:
            raise JobFailed(exc.code, exc.message) from exc
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise JobFailed(
                ErrorCode.OUT_OF_MEMORY,
                "the GPU ran out of memory running this job; send a "
                "smaller input (shorter audio or text, fewer tokens)",
            ) from exc
        except Exception as exc:
            log.exception("job %s: the %s model failed", record.id, record.task.value)
            raise JobFailed(ErrorCode.MODEL_ERROR, f"{type(exc).__name__}: {exc}") from exc

    def _request(self, record: JobRecord, handler: AnyHandler) -> tuple[BaseModel, BaseModel]:
        """The job's input and params, validated again with the handler's models (the gateway
        validated them with the same ones, shared/task_schemas.py)."""
        task = record.task
        raw_input: Any = record.input
        if task in AUDIO_INPUT_TASKS:
            audio = self.redis.get(redis_keys.job_input(record.id))
            if audio is None:
                raise InputExpired(
                    f"the uploaded audio is gone (it is kept AMULET_INPUT_TTL_S="
                    f"{self.settings.INPUT_TTL_S} s); submit the job again"
                )
            raw_input = {"audio": audio, "filename": record.input_filename}
        try:
            return handler.input_type.model_validate(raw_input), handler.params_type.model_validate(
                record.params or {}
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"invalid {task.value} request: {problems}") from exc

    def _succeed(self, job_id: str, outcome: BatchOutcome) -> None:
        output = outcome.output
        self._finish_job(
            job_id,
            JobStatus.SUCCEEDED,
            result=output.result,
            content_type=output.content_type,
            blob=output.blob,
            batch_size=outcome.batch_size,
        )

    def _fail(self, job_id: str, code: ErrorCode, message: str) -> None:
        self._finish_job(job_id, JobStatus.FAILED, error=_error(code, message))

    def _finish_job(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        content_type: str | None = None,
        blob: bytes | None = None,
        batch_size: int | None = None,
    ) -> None:
        done = run(
            self.redis,
            finish_job(
                job_id=job_id,
                status=status,
                result_ttl_s=self.settings.RESULT_TTL_S,
                result=result,
                error=error,
                content_type=content_type,
                blob=blob,
                batch_size=batch_size,
            ),
        )
        if done is FinishOutcome.CANCELED_INSTEAD:
            log.info(
                "job %s: cancel requested before it finished; ended canceled (%s discarded)",
                job_id,
                status.value,
            )
        elif done is FinishOutcome.ALREADY_ENDED:
            log.info("job %s: already terminal (canceled?); %s result discarded", job_id, status.value)
        elif done is FinishOutcome.NOT_FOUND:
            log.warning(
                "job %s: record gone (deleted or expired) before it could be marked %s", job_id, status.value
            )


def _error(code: ErrorCode, message: str) -> dict[str, str]:
    """A job's error; messages end up in API answers, so they are kept readable."""
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 3] + "..."
    return {"code": code.value, "message": message}
