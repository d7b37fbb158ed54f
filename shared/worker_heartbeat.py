"""A worker's heartbeat: what it reports every AMULET_HEARTBEAT_INTERVAL_S.

The worker writes it (worker/heartbeat.py) as JSON under ``amulet:worker:{hostname}`` (TTL 3
intervals) and into its health file; the gateway reads it back (api/live_workers.py) for
``GET /tasks``, ``/readyz`` and to refuse jobs of a task no live worker has a model for. One
model for both sides: a field added here reaches both.

Unknown fields are ignored, and task names and queues are plain strings, so a gateway keeps
reading the heartbeats of workers newer than itself during a rolling upgrade.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.tasks import TaskName, queue_for

WorkerState = Literal["loading", "ready", "failed"]


class TaskReport(BaseModel):
    """One task of the worker's queues: whether its model is loaded, which, and where."""

    model_config = ConfigDict(extra="ignore")

    enabled: bool = Field(False, description="The model is loaded and the task is served.")
    model: str | None = Field(None, description="The configured model (Hub id or directory); None: disabled.")
    device: str | None = None
    dtype: str | None = None


class WorkerHeartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hostname: str = Field(description="worker-<pid>-<random>@<host>: new at every start.")
    pid: int
    state: WorkerState = "loading"
    queues: list[str] = Field(default_factory=list, description="The queues it consumes.")
    device: str | None = None
    dtype: str | None = None
    cuda_available: bool | None = None
    gpu_reserved: bool | None = Field(
        None, description="A GPU was reserved for its container (NVIDIA_VISIBLE_DEVICES set)."
    )
    tasks: dict[str, TaskReport] = Field(default_factory=dict, description="Task name -> its report.")
    started_at: float = Field(description="Unix time the process started.")
    updated_at: float | None = Field(None, description="Unix time of this heartbeat.")
    message: str | None = Field(None, description="Why it failed, when state is failed.")

    def serves(self, task: TaskName) -> bool:
        return queue_for(task).value in self.queues

    def runs(self, task: TaskName) -> TaskReport | None:
        """The task's report when this worker serves it with a model, else None."""
        report = self.tasks.get(task.value)
        if self.serves(task) and report is not None and report.enabled and report.model:
            return report
        return None
