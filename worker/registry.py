"""Loads the handlers of the tasks this worker serves and records what runs where.

What it records (task -> model, device, dtype) is what the heartbeat publishes, so the
gateway's GET /tasks reports the models that are actually loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.settings import WorkerSettings
from shared.tasks import TaskName
from shared.worker_heartbeat import TaskReport
from worker.batch_limits import BatchLimits
from worker.device import DeviceChoice, dtype_name
from worker.errors import StartupError
from worker.handlers import AnyHandler, HandlerConfig, TaskOutput, handler_class
from worker.model_source import resolve_model

log = logging.getLogger(__name__)

Resolver = Callable[[str, TaskName, WorkerSettings], Path]


@dataclass
class TaskSlot:
    task: TaskName
    model: str | None  # the configured reference (Hub id or directory); None = disabled
    handler: AnyHandler | None = None

    def describe(self) -> TaskReport:
        if self.handler is None:
            return TaskReport(enabled=False, model=self.model)
        return TaskReport(
            enabled=True, model=self.model, device=self.handler.device, dtype=dtype_name(self.handler.dtype)
        )


class Registry:
    def __init__(self, settings: WorkerSettings, tasks: list[TaskName]) -> None:
        self.settings = settings
        self.slots = {task: TaskSlot(task, settings.model_for(task)) for task in tasks}

    def handler(self, task: TaskName) -> AnyHandler | None:
        slot = self.slots.get(task)
        return slot.handler if slot else None

    def model(self, task: TaskName) -> str | None:
        slot = self.slots.get(task)
        return slot.model if slot else None

    def run(self, task: TaskName, items: list[Any]) -> list[TaskOutput]:
        """Run a batch of prepared items on the task's handler (the Batcher calls this)."""
        handler = self.handler(task)
        if handler is None:
            raise RuntimeError(f"no {task.value} model is loaded on this worker")
        return handler.run(items)

    def configured(self) -> list[TaskName]:
        """Tasks with a model configured (loaded or not yet)."""
        return [task for task, slot in self.slots.items() if slot.model is not None]

    def describe(self) -> dict[str, TaskReport]:
        """The ``tasks`` of the heartbeat."""
        return {task.value: slot.describe() for task, slot in self.slots.items()}

    def load(
        self,
        device: DeviceChoice,
        limits: Mapping[TaskName, BatchLimits],
        resolve: Resolver = resolve_model,
    ) -> None:
        """Load every enabled task's model (with its batch limits) and warm it up; StartupError
        names the task that failed."""
        for task, slot in self.slots.items():
            if slot.model is None:
                log.info("task=%s disabled (no model configured)", task.value)
                continue
            started = time.monotonic()
            try:
                path = resolve(slot.model, task, self.settings)
                config = HandlerConfig(
                    path, device.device, device.dtype, self.settings, limits[task].max_batch_size
                )
                handler = handler_class(task)(config)
                handler.warmup()
            except StartupError:
                raise
            except Exception as exc:
                raise StartupError(
                    f"cannot load the {task.value} model {slot.model}: {type(exc).__name__}: {exc}"
                ) from exc
            slot.handler = handler
            log.info(
                "task=%s model=%s device=%s dtype=%s loaded in %.1f s",
                task.value,
                slot.model,
                handler.device,
                dtype_name(handler.dtype),
                time.monotonic() - started,
            )
        if not any(slot.handler for slot in self.slots.values()):
            log.warning("no task has a model configured: every job sent here will fail with task_disabled")
