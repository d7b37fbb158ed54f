"""Text to speech with a VITS-family model through the transformers pipeline; returns a WAV file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import pipeline

from shared.settings import WorkerSettings
from shared.task_schemas import SynthesizeInput, SynthesizeParams
from shared.tasks import TaskName
from worker.handlers.base import Handler, TaskOutput


class SynthesizeHandler(Handler[SynthesizeInput, SynthesizeParams, str]):
    task = TaskName.SYNTHESIZE
    input_type = SynthesizeInput
    params_type = SynthesizeParams

    def __init__(
        self,
        model_path: Path,
        device: str,
        dtype: torch.dtype,
        settings: WorkerSettings,
        max_batch_size: int = 1,
    ) -> None:
        # VITS models are small (tens of millions of parameters): fp16 saves little and its
        # flow and vocoder have not been validated in half precision, so they run in fp32.
        dtype = torch.float32
        super().__init__(model_path, device, dtype, settings, max_batch_size)
        self.pipe = pipeline("text-to-audio", model=str(model_path), device=device, dtype=dtype)

    def prepare(self, job_input: SynthesizeInput, params: SynthesizeParams) -> str:
        return job_input.text

    def run(self, items: list[str]) -> list[TaskOutput]:
        # One text per call: VITS pads a batch to its longest text, which would leave trailing
        # noise on the shorter clips.
        return [self._run_one(text) for text in items]

    def _run_one(self, text: str) -> TaskOutput:
        output = self.pipe(text)
        sampling_rate = int(output["sampling_rate"])
        samples = np.clip(np.asarray(output["audio"], dtype=np.float32).reshape(-1), -1.0, 1.0)
        buffer = io.BytesIO()
        sf.write(buffer, samples, sampling_rate, format="WAV", subtype="PCM_16")
        return TaskOutput(
            result={
                "content_type": "audio/wav",
                "sampling_rate": sampling_rate,
                "duration_s": round(len(samples) / sampling_rate, 3),
            },
            blob=buffer.getvalue(),
            content_type="audio/wav",
        )

    def warmup(self) -> None:
        self.pipe("Hello.")
