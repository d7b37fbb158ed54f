"""What every task handler looks like.

A handler loads its model once (constructor) and then serves jobs in two steps:
``prepare`` checks and converts one job's validated input and params (decode audio, tokenize,
...), raising a JobInputError that fails only that job; ``run`` takes a *list* of prepared items
and returns one output per item, so grouping several jobs into one forward pass is a scheduling
decision made outside the handler, not a rewrite of it.

Each handler declares its types: ``Handler[InputT, ParamsT, PreparedT]``, with ``input_type``
and ``params_type`` the models of shared/task_schemas.py the gateway validated the request with.
The runner validates the stored request with them again and hands ``prepare`` typed objects.
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


@dataclass(frozen=True)
class HandlerConfig:
    """What a handler is built with: its model, where it runs, the worker's settings, and the
    task's batch limit on that device (worker/batch_limits.py). The batcher never passes more
    items than ``max_batch_size``; a handler that splits one item into several model inputs (long
    audio into chunks) uses it as its own forward-pass size."""

    model_path: Path
    device: str
    dtype: torch.dtype
    settings: WorkerSettings
    max_batch_size: int = 1


@dataclass
class TaskOutput:
    """The job's ``result`` JSON, plus a binary result (served by GET /jobs/{id}/result) if any."""

    result: dict[str, Any]
    blob: bytes | None = None
    content_type: str | None = None


InputT = TypeVar("InputT", bound=BaseModel)
ParamsT = TypeVar("ParamsT", bound=BaseModel)
PreparedT = TypeVar("PreparedT")


class Handler(ABC, Generic[InputT, ParamsT, PreparedT]):
    task: ClassVar[TaskName]
    input_type: type[InputT]
    params_type: type[ParamsT]

    def __init__(self, config: HandlerConfig) -> None:
        self.model_path = config.model_path
        self.device = config.device
        self.dtype = config.dtype
        self.settings = config.settings
        self.max_batch_size = config.max_batch_size

    @abstractmethod
    def prepare(self, job_input: InputT, params: ParamsT) -> PreparedT:
        """Check and convert one job's input; raise JobInputError for input the model cannot take."""

    @abstractmethod
    def run(self, items: list[PreparedT]) -> list[TaskOutput]:
        """Run the model on prepared items; one output per item, in order."""

    @abstractmethod
    def warmup(self) -> None:
        """Run a tiny input once so the first real job does not pay for lazy initialisation."""


# What the registry holds: a handler of any task.
AnyHandler = Handler[Any, Any, Any]
