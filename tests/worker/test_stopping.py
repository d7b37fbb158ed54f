"""Generation stops when every job of the batch is stopped (canceled or past its time limit):
the handlers pass worker/stopping.py's StoppingCriteria through to transformers' generate, for the
tiny random Llama (generate) and the tiny random Whisper through the ASR pipeline (transcribe).
A job nobody stopped, sharing the batch, keeps the whole batch going."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.local import tiny_models
from shared.settings import WorkerSettings
from shared.task_schemas import GenerateInput, GenerateParams, TranscribeInput, TranscribeParams
from worker.handlers import HandlerConfig
from worker.stopping import JobControl, running_batch

pytestmark = pytest.mark.timeout(300)


def _controls(*stopped: bool) -> list[JobControl]:
    controls = [JobControl(f"job-{i}", 600) for i in range(len(stopped))]
    for control, stop in zip(controls, stopped, strict=True):
        if stop:
            control.canceled.set()
    return controls


def test_generate_stops_at_once_when_its_job_is_stopped() -> None:
    from worker.handlers.generate import GenerateHandler

    settings = WorkerSettings(MAX_NEW_TOKENS=300)
    handler = GenerateHandler(
        HandlerConfig(tiny_models.all_cached()["generator"], "cpu", torch.float32, settings)
    )
    item = handler.prepare(
        GenerateInput(prompt="Tell me a long story."), GenerateParams(max_new_tokens=300, temperature=0.0)
    )
    with running_batch(_controls(False)):
        assert handler.run([item])[0].result["generated_tokens"] == 300
    with running_batch(_controls(True)):
        assert handler.run([item])[0].result["generated_tokens"] <= 1
    # One job of two still wanted: the batch runs on for it.
    with running_batch(_controls(True, False)):
        assert handler.run([item])[0].result["generated_tokens"] == 300


def test_whisper_decoding_stops_when_its_job_is_stopped() -> None:
    from worker.handlers.transcribe import TranscribeHandler

    handler = TranscribeHandler(
        HandlerConfig(tiny_models.all_cached()["whisper"], "cpu", torch.float32, WorkerSettings())
    )
    chunks = 4  # 120 s in AMULET_CHUNK_LENGTH_S=30 s chunks
    noise = (np.random.default_rng(0).standard_normal(16_000 * 30 * chunks) * 0.1).astype(np.float32)
    params = TranscribeParams(language="en", return_timestamps=True)
    item = handler.prepare(TranscribeInput(audio=_wav(noise, 16_000)), params)
    with running_batch(_controls(False)):
        full = handler.run([item])[0].result["text"]
    with running_batch(_controls(True)):
        stopped = handler.run([item])[0].result["text"]
    # Random weights: the full text is whatever the model says; stopped, each chunk decodes at
    # most one token (one printable byte here).
    assert len(full) > chunks, full
    assert len(stopped) <= chunks, (stopped, full)


def _wav(samples: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
