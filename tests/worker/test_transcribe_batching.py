"""Long audio batches across jobs: the 30 s chunks of several jobs share Whisper forward passes.

The handler is loaded by the worker's own Registry (the code ``python -m worker`` runs) with the
tiny random Whisper from a local directory, and given the batch limit the worker would set. Only
the model's ``generate`` is wrapped, to record how many chunks each forward pass decoded; it still
runs the real model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.tiny_models import cached
from shared.settings import WorkerSettings
from shared.task_schemas import TranscribeInput, TranscribeParams
from shared.tasks import TaskName
from tests.utils.audio import tone
from worker import batch_limits
from worker.device import choose_device
from worker.handlers import AnyHandler
from worker.registry import Registry

pytestmark = pytest.mark.timeout(600)

# Above the 30 s chunk length, so the pipeline splits each clip into overlapping chunks; different
# lengths, so each result can be told apart.
FIRST_S, SECOND_S = 40.0, 50.0
BATCH = 4


@pytest.fixture(scope="module")
def handler() -> AnyHandler:
    settings = WorkerSettings(
        TRANSCRIBE_MODEL=str(cached("whisper")),
        QUEUES="speech",
        DEVICE="cpu",
        TRANSCRIBE_MAX_BATCH_SIZE=BATCH,
    )
    registry = Registry(settings, [TaskName.TRANSCRIBE])
    device = choose_device(settings.DEVICE)
    # The batch limits as worker/__main__.py resolves them, given to the handler at construction.
    registry.load(
        device, {TaskName.TRANSCRIBE: batch_limits.resolve(settings, TaskName.TRANSCRIBE, device.device)}
    )
    loaded = registry.handler(TaskName.TRANSCRIBE)
    assert loaded is not None and loaded.max_batch_size == BATCH
    return loaded


@pytest.fixture
def forward_passes(handler: AnyHandler, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of chunks each ``generate`` call decoded, in call order."""
    model = handler.pipe.model
    real_generate = model.generate
    sizes: list[int] = []

    def counting_generate(*args, **kwargs):
        features = kwargs.get("input_features", args[0] if args else None)
        sizes.append(int(features.shape[0]))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting_generate)
    return sizes


def _item(handler: AnyHandler, tmp_path: Path, name: str, seconds: float):
    audio = tone(seconds, tmp_path / f"{name}.wav").read_bytes()
    params = TranscribeParams(language="en", return_timestamps=False)
    return handler.prepare(TranscribeInput(audio=audio, filename=f"{name}.wav"), params)


def test_chunks_of_different_long_jobs_share_forward_passes(
    handler: AnyHandler, forward_passes: list[int], tmp_path: Path
) -> None:
    first = _item(handler, tmp_path, "first", FIRST_S)
    second = _item(handler, tmp_path, "second", SECOND_S)

    chunks, passes = [], []
    for item in (first, second):
        forward_passes.clear()
        handler.run([item])
        chunks.append(sum(forward_passes))
        passes.append(len(forward_passes))
    assert min(chunks) >= 2, chunks  # the clips really were chunked
    assert max(chunks) < BATCH, "the test needs one job's chunks to leave room in a batch"

    forward_passes.clear()
    together = handler.run([first, second])

    # Both jobs' chunks went through the pipeline as one stream: a forward pass held more chunks
    # than either job has, and the pair needed fewer passes than the two jobs one after the other.
    assert sum(forward_passes) == sum(chunks), forward_passes
    assert max(forward_passes) > max(chunks), forward_passes
    assert len(forward_passes) < sum(passes), forward_passes
    # Each job still gets its own result, in order.
    assert [o.result["duration_s"] for o in together] == [
        pytest.approx(FIRST_S, abs=0.1),
        pytest.approx(SECOND_S, abs=0.1),
    ]
    assert all(isinstance(o.result["text"], str) for o in together)
