"""Text to speech with a VITS-family model through the transformers pipeline; returns a WAV file."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import soundfile as sf
import torch
from transformers import pipeline

from shared.task_schemas import SynthesizeInput, SynthesizeParams
from shared.tasks import TaskName
from worker.handlers.base import Handler, HandlerConfig, TaskOutput


class SynthesizeHandler(Handler[SynthesizeInput, SynthesizeParams, str]):
    task = TaskName.SYNTHESIZE
    input_type = SynthesizeInput
    params_type = SynthesizeParams

    def __init__(self, config: HandlerConfig) -> None:
        # VITS models are small (tens of millions of parameters): fp16 saves little and its
        # flow and vocoder have not been validated in half precision, so they run in fp32.
        super().__init__(dataclasses.replace(config, dtype=torch.float32))
        self.pipe = pipeline(
            "text-to-audio", model=str(self.model_path), device=self.device, dtype=self.dtype
        )

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
