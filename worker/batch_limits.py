"""How many jobs of one task may share a forward pass, and how long a job waits for company.

The defaults are per device and come from measurement, not hope: docs/benchmarks.md has the
sweeps behind every number here (``make bench`` re-measures them). A default never makes a
deployment slower than batching off (batch 1): where a task was not measured on a device, or
batching measured slower there, its default is 1. AMULET_<TASK>_MAX_BATCH_SIZE and
AMULET_<TASK>_MAX_WAIT_MS override them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import WorkerSettings
from shared.tasks import TaskName


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 1
    # A job waits at most this long (from its arrival) for others to join its batch.
    max_wait_ms: float = 0.0

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1


OFF = BatchLimits()

# See docs/benchmarks.md, "Default batch sizes". Measured on a 2-core CPU:
# - embed (all-MiniLM-L6-v2, one sentence per job): throughput grows up to batch 32.
# - transcribe (Whisper tiny.en, real and whisper-shaped): batch 1 is fastest; every input is
#   padded to 30 s, so a batch costs about n times one input plus padding overhead.
# - classify, generate, synthesize: not measured with their real models; generate and synthesize
#   run one job per call inside their handlers anyway.
# CUDA: not measured yet (no GPU was available; `make bench-gpu` runs the sweep), so 1 everywhere
# until a measurement says otherwise.
DEFAULTS: dict[str, dict[TaskName, BatchLimits]] = {
    "cpu": {
        TaskName.EMBED: BatchLimits(max_batch_size=32, max_wait_ms=5.0),
    },
    "cuda": {},
}


def resolve(settings: WorkerSettings, task: TaskName, device: str) -> BatchLimits:
    """The task's limits on this device: the settings where given, else the measured default."""
    default = DEFAULTS.get(device, {}).get(task, OFF)
    size, wait_ms = settings.batch_limits_for(task)
    return BatchLimits(
        max_batch_size=size if size is not None else default.max_batch_size,
        max_wait_ms=wait_ms if wait_ms is not None else default.max_wait_ms,
    )
