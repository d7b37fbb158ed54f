"""Speech to text with a Whisper-family (or CTC) model through the transformers pipeline."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import pipeline

from shared.task_schemas import TranscribeInput, TranscribeParams
from shared.tasks import TaskName
from worker.audio import decode_audio, duration_s
from worker.errors import InvalidInput
from worker.handlers.base import Handler, HandlerConfig, TaskOutput
from worker.stopping import stopping_criteria

log = logging.getLogger(__name__)


@dataclass
class TranscribeItem:
    samples: np.ndarray
    params: TranscribeParams
    language: str | None  # normalised language code, or None to let the model detect it


class TranscribeHandler(Handler[TranscribeInput, TranscribeParams, TranscribeItem]):
    task = TaskName.TRANSCRIBE
    input_type = TranscribeInput
    params_type = TranscribeParams

    def __init__(self, config: HandlerConfig) -> None:
        super().__init__(config)
        self.pipe = pipeline(
            "automatic-speech-recognition", model=str(self.model_path), device=self.device, dtype=self.dtype
        )
        if self.pipe.feature_extractor is None:
            raise ValueError(f"{self.model_path} has no feature extractor: not a speech recognition model")
        self.sampling_rate: int = self.pipe.feature_extractor.sampling_rate
        generation = getattr(self.pipe.model, "generation_config", None)
        self.is_whisper = self.pipe.model.config.model_type == "whisper"
        # English-only Whisper checkpoints (*.en) reject language/task generate kwargs.
        self.multilingual = self.is_whisper and bool(getattr(generation, "is_multilingual", False))
        self.lang_to_id: dict[str, int] = dict(getattr(generation, "lang_to_id", None) or {})

    def _language_code(self, language: str | None) -> str | None:
        if language is None:
            return None
        from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

        wanted = language.strip().lower()
        code = TO_LANGUAGE_CODE.get(wanted, wanted if wanted in LANGUAGES else None)
        if self.lang_to_id and (code is None or f"<|{code}|>" not in self.lang_to_id):
            known = sorted(k.strip("<|>") for k in self.lang_to_id)
            raise InvalidInput(
                f"unknown language {language!r} for this model; use one of: {', '.join(known)}"
            )
        return code or wanted

    def prepare(self, job_input: TranscribeInput, params: TranscribeParams) -> TranscribeItem:
        if not self.multilingual and params.task == "translate":
            raise InvalidInput("this transcription model is English-only and cannot translate")
        if not self.multilingual and params.language and self._english_only_mismatch(params.language):
            raise InvalidInput(
                f"this transcription model is English-only; language {params.language!r} is not supported"
            )
        language = self._language_code(params.language) if self.multilingual else None
        samples = decode_audio(job_input.audio, self.sampling_rate)
        return TranscribeItem(samples=samples, params=params, language=language)

    @staticmethod
    def _english_only_mismatch(language: str) -> bool:
        return language.strip().lower() not in {"en", "english"}

    def _call_kwargs(self, item: TranscribeItem) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.is_whisper:
            kwargs["return_timestamps"] = item.params.return_timestamps
        if duration_s(item.samples, self.sampling_rate) > self.settings.CHUNK_LENGTH_S:
            kwargs["chunk_length_s"] = self.settings.CHUNK_LENGTH_S
        if self.multilingual:
            generate: dict[str, Any] = {"task": item.params.task}
            if item.language:
                generate["language"] = item.language
            else:
                # Whisper detects the language itself; ask the pipeline to tell us which.
                kwargs["return_language"] = True
            kwargs["generate_kwargs"] = generate
        return kwargs

    def run(self, items: list[TranscribeItem]) -> list[TaskOutput]:
        # Jobs whose call options match (chunking, timestamps, language, task) go through one
        # pipeline call: the pipeline batches their inputs, and the chunks of long audio, of one
        # job and of different jobs alike, max_batch_size at a time.
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(json.dumps(self._call_kwargs(item), sort_keys=True), []).append(index)
        outputs: list[TaskOutput | None] = [None] * len(items)
        for key, indices in groups.items():
            group = [items[i] for i in indices]
            # Fresh dicts every call: the pipeline pops "raw" out of them.
            inputs = [{"raw": item.samples, "sampling_rate": self.sampling_rate} for item in group]
            kwargs = json.loads(key)
            if self.is_whisper:
                # Whisper decodes token by token: stop once the batch's jobs are canceled or past
                # their time limit (each remaining chunk then ends after one token).
                kwargs["generate_kwargs"] = {
                    **kwargs.get("generate_kwargs", {}),
                    "stopping_criteria": stopping_criteria(),
                }
            # A list of inputs gives a list of outputs (the pipeline's types only know one input).
            raw = self.pipe(inputs, batch_size=max(1, self.max_batch_size), **kwargs)  # type: ignore[arg-type]
            for i, item, output in zip(indices, group, raw, strict=True):
                outputs[i] = self._output(item, output)
        return [output for output in outputs if output is not None]

    def _output(self, item: TranscribeItem, output: dict[str, Any]) -> TaskOutput:
        duration = duration_s(item.samples, self.sampling_rate)
        text = output["text"].strip()
        chunks = output.get("chunks") or []
        segments = _segments(chunks if item.params.return_timestamps else [], text, duration)
        if self.multilingual:
            language = item.language or _detected_language(chunks)
        else:
            language = "en" if self.is_whisper else None
        return TaskOutput(
            result={"text": text, "language": language, "duration_s": duration, "segments": segments}
        )

    def warmup(self) -> None:
        silence = np.zeros(self.sampling_rate // 2, dtype=np.float32)
        kwargs: dict[str, Any] = {"generate_kwargs": {"max_new_tokens": 4}} if self.is_whisper else {}
        self.pipe({"raw": silence, "sampling_rate": self.sampling_rate}, **kwargs)


def _segments(chunks: list[dict[str, Any]], text: str, duration: float) -> list[dict[str, Any]]:
    """Timestamped segments from the pipeline's chunks; one segment for the clip without them."""
    segments = []
    for chunk in chunks:
        start, end = chunk.get("timestamp") or (None, None)
        chunk_text = chunk.get("text", "").strip()
        if not chunk_text:
            continue
        # Whisper can place the last timestamp slightly past the end of the audio.
        segments.append(
            {
                "start": round(min(float(start), duration), 3) if start is not None else 0.0,
                "end": round(min(float(end), duration), 3) if end is not None else None,
                "text": chunk_text,
            }
        )
    return segments or [{"start": 0.0, "end": duration, "text": text}]


def _detected_language(chunks: list[dict[str, Any]]) -> str | None:
    """The language code the pipeline reports (it gives Whisper's language names, e.g. 'english')."""
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    for chunk in chunks:
        name = chunk.get("language")
        if name:
            return str(TO_LANGUAGE_CODE.get(name, name))
    return None
