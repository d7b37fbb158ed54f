"""What every task handler looks like.

A handler loads its model once (constructor) and then serves jobs in two steps:
``prepare`` checks and converts one job's input (decode audio, tokenize, ...), raising a
JobInputError that fails only that job; ``run`` takes a *list* of prepared items and
returns one output per item, so grouping several jobs into one forward pass is a
scheduling decision made outside the handler, not a rewrite of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from pydantic import BaseModel

from shared.settings import WorkerSettings
from shared.tasks import TaskName


@dataclass
class JobPayload:
    """One job's validated request as the runner hands it to a handler."""

    job_id: str
    params: BaseModel
    # The validated input model for JSON tasks; the uploaded bytes for audio tasks.
    input: BaseModel | None = None
    audio: bytes | None = None


@dataclass
class TaskOutput:
    """The job's ``result`` JSON, plus a binary result (served by GET /jobs/{id}/result) if any."""

    result: dict[str, Any]
    blob: bytes | None = None
    content_type: str | None = None


Prepared = TypeVar("Prepared")


class Handler(ABC, Generic[Prepared]):
    task: ClassVar[TaskName]

    def __init__(self, model_path: Path, device: str, dtype: torch.dtype, settings: WorkerSettings) -> None:
        self.model_path = model_path
        self.device = device
        self.dtype = dtype
        self.settings = settings
        # The task's batch limit on this device (worker/batch_limits.py), set at start-up. The
        # batcher never passes more items than this; a handler that splits one item into several
        # model inputs (long audio into chunks) uses it as its own forward-pass size.
        self.max_batch_size = 1

    @abstractmethod
    def prepare(self, payload: JobPayload) -> Prepared:
        """Check and convert one job's input; raise JobInputError for input the model cannot take."""

    @abstractmethod
    def run(self, items: list[Prepared]) -> list[TaskOutput]:
        """Run the model on prepared items; one output per item, in order."""

    @abstractmethod
    def warmup(self) -> None:
        """Run a tiny input once so the first real job does not pay for lazy initialisation."""
