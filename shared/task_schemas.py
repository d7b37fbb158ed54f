"""Inputs and parameters of each task: validated by the gateway, re-read by the worker.

Models forbid unknown fields, so a typo in a parameter is a 422 that names it instead of
a silently ignored option.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.tasks import TaskName


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- transcribe (audio upload, multipart/form-data) ---------------------------------
class TranscribeParams(_Strict):
    language: str | None = Field(
        None,
        min_length=2,
        max_length=16,
        description="Spoken language (e.g. 'en'); detected when omitted.",
        examples=["en"],
    )
    task: Literal["transcribe", "translate"] = Field(
        "transcribe", description="transcribe keeps the spoken language; translate outputs English."
    )
    return_timestamps: bool = Field(True, description="Return timestamped segments.")


class TranscribeInput(_Strict):
    """The uploaded audio. Sent as the multipart field ``file``; the gateway stores the bytes
    beside the job (``amulet:input:{id}``) and the file name in its record, and the worker reads
    both back into this model."""

    audio: bytes = Field(min_length=1, description="The audio file, any format ffmpeg reads; not empty.")
    filename: str | None = Field(None, description="The upload's file name, as the client sent it.")


# -- synthesize -----------------------------------------------------------------------
class SynthesizeInput(_Strict):
    text: str = Field(min_length=1, max_length=5_000, examples=["Hello from Amulet."])


class SynthesizeParams(_Strict):
    pass


# -- generate -------------------------------------------------------------------------
class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class GenerateInput(_Strict):
    prompt: str | None = Field(
        None, min_length=1, max_length=100_000, examples=["Write a haiku about queues."]
    )
    messages: list[ChatMessage] | None = Field(None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _exactly_one(self) -> GenerateInput:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' (a string) or 'messages' (a chat message list)")
        return self


class GenerateParams(_Strict):
    max_new_tokens: int = Field(
        128, ge=1, le=4096, description="Most tokens to generate (capped by the worker)."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy decoding; above 0 samples.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling (with temperature > 0).")


# -- classify -------------------------------------------------------------------------
class ClassifyInput(_Strict):
    text: str = Field(min_length=1, max_length=100_000, examples=["I love this service!"])


class ClassifyParams(_Strict):
    top_k: int | None = Field(
        None, ge=1, le=1000, description="How many labels to return (all when omitted)."
    )


# -- embed ----------------------------------------------------------------------------
class EmbedInput(_Strict):
    texts: list[str] = Field(
        min_length=1, max_length=1024, examples=[["A cat sits on the mat.", "Stocks fell sharply."]]
    )


class EmbedParams(_Strict):
    normalize: bool = Field(True, description="L2-normalise the vectors (cosine similarity = dot product).")


TASK_INPUTS: dict[TaskName, type[BaseModel]] = {
    TaskName.TRANSCRIBE: TranscribeInput,
    TaskName.SYNTHESIZE: SynthesizeInput,
    TaskName.GENERATE: GenerateInput,
    TaskName.CLASSIFY: ClassifyInput,
    TaskName.EMBED: EmbedInput,
}

TASK_PARAMS: dict[TaskName, type[BaseModel]] = {
    TaskName.TRANSCRIBE: TranscribeParams,
    TaskName.SYNTHESIZE: SynthesizeParams,
    TaskName.GENERATE: GenerateParams,
    TaskName.CLASSIFY: ClassifyParams,
    TaskName.EMBED: EmbedParams,
}

# One example request per JSON task, shown in the OpenAPI docs.
JSON_EXAMPLES: dict[TaskName, dict[str, Any]] = {
    TaskName.SYNTHESIZE: {"task": "synthesize", "input": {"text": "Hello from Amulet."}},
    TaskName.GENERATE: {
        "task": "generate",
        "input": {"messages": [{"role": "user", "content": "Write a haiku about queues."}]},
        "params": {"max_new_tokens": 64, "temperature": 0.7},
    },
    TaskName.CLASSIFY: {"task": "classify", "input": {"text": "I love this service!"}},
    TaskName.EMBED: {"task": "embed", "input": {"texts": ["A cat sits on the mat.", "Stocks fell sharply."]}},
}
