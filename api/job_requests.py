"""Turning a POST /jobs request into a validated job submission.

The handler reads the body itself (instead of declaring a body parameter) because one
route takes two content types: JSON for text tasks, multipart/form-data for audio.
The per-task request models built here serve both validation and the OpenAPI schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.datastructures import UploadFile

from api.errors import ApiError, ApiErrorCode, invalid_message, validation_details
from api.uploads import MULTIPART_MEDIA_TYPE, is_json, media_type, read_json_body, read_multipart
from shared.task_schemas import TASK_INPUTS, TASK_PARAMS, TranscribeInput
from shared.tasks import AUDIO_INPUT_TASKS, TaskName

JSON_TASKS: tuple[TaskName, ...] = tuple(t for t in TaskName if t not in AUDIO_INPUT_TASKS)
MULTIPART_FIELDS = frozenset({"task", "file", "params"})


@dataclass
class JobSubmission:
    """A request that passed validation and can become a job record."""

    task: TaskName
    params: dict[str, Any]
    input: Any = None
    audio: bytes | None = None
    input_filename: str | None = None


def _json_request_model(task: TaskName) -> type[BaseModel]:
    params_model = TASK_PARAMS[task]
    # Literal of a value known at run time: built through the special form, which type checkers
    # cannot follow (they only take literals written in the source).
    task_literal: Any = Literal.__getitem__(task.value)
    return create_model(
        f"{task.value.capitalize()}JobRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Create a `{task.value}` job.",
        task=(task_literal, ...),
        input=(TASK_INPUTS[task], ...),
        params=(params_model, Field(default_factory=params_model)),
    )


# Built once at import: they are pure schema, no settings involved.
JSON_REQUEST_MODELS: dict[TaskName, type[BaseModel]] = {t: _json_request_model(t) for t in JSON_TASKS}


# Strict validation: the body is JSON, so types must match the documented schema exactly
# (no "0" for false, no "5" for 5) -- what the OpenAPI schema promises is what is accepted.


def _invalid(details: list[dict[str, Any]], message: str | None = None) -> ApiError:
    return ApiError(422, ApiErrorCode.INVALID_REQUEST, message or invalid_message(details), details=details)


def _unsupported(message: str) -> ApiError:
    return ApiError(415, ApiErrorCode.UNSUPPORTED_MEDIA_TYPE, message)


def parse_task(value: object, loc: list[str]) -> TaskName:
    if value is None:
        raise _invalid([{"loc": loc, "msg": "Field required", "type": "missing"}], "Give the field 'task'.")
    try:
        return TaskName(str(value))
    except ValueError:
        available = [t.value for t in TaskName]
        raise ApiError(
            422,
            ApiErrorCode.UNKNOWN_TASK,
            f"Unknown task {value!r}; use one of: {', '.join(available)}.",
            details={"available": available},
        ) from None


async def read_submission(request: Request, max_bytes: int) -> JobSubmission:
    """Dispatch on Content-Type, read the body within ``max_bytes`` and validate it."""
    media = media_type(request)
    if is_json(media):
        return _from_json(await read_json_body(request, max_bytes))
    if media == MULTIPART_MEDIA_TYPE:
        return await _from_multipart(request, max_bytes)
    raise _unsupported(
        f"Content-Type {media or '(none)'!r} is not supported: send application/json for text tasks "
        "or multipart/form-data for audio tasks."
    )


def _from_json(body: Any) -> JobSubmission:
    if not isinstance(body, dict):
        raise _invalid([{"loc": ["body"], "msg": "Input should be a JSON object", "type": "dict_type"}])
    task = parse_task(body.get("task"), ["body", "task"])
    if task in AUDIO_INPUT_TASKS:
        raise _unsupported(f"Task {task.value!r} takes an audio upload: send multipart/form-data.")
    try:
        request = JSON_REQUEST_MODELS[task].model_validate(body, strict=True)
    except ValidationError as exc:
        raise _invalid(_prefixed(exc, ["body"])) from exc
    # exclude_unset: the job shows what the client asked for; the worker re-reads it with the
    # same models, so defaults are applied there.
    dumped = request.model_dump(mode="json", exclude_unset=True)
    return JobSubmission(task=task, input=dumped["input"], params=dumped.get("params", {}))


async def _from_multipart(request: Request, max_bytes: int) -> JobSubmission:
    form = await read_multipart(request, max_bytes)
    try:
        unknown = sorted(set(form.keys()) - MULTIPART_FIELDS)
        if unknown:
            raise _invalid(
                [
                    {
                        "loc": ["body", name],
                        "msg": "Extra inputs are not permitted",
                        "type": "extra_forbidden",
                    }
                    for name in unknown
                ]
            )
        task_field = form.get("task")
        task = parse_task(task_field if isinstance(task_field, str) else None, ["body", "task"])
        if task not in AUDIO_INPUT_TASKS:
            raise _unsupported(f"Task {task.value!r} takes JSON: send application/json.")
        params = _multipart_params(task, form.get("params"))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _invalid(
                [{"loc": ["body", "file"], "msg": "Field required (an uploaded file)", "type": "missing"}],
                "Upload the audio in the field 'file'.",
            )
        # Bounded by max_bytes already; the bytes go to Redis as one value anyway.
        audio = await upload.read()
        if not audio:
            raise _invalid(
                [{"loc": ["body", "file"], "msg": "The uploaded file is empty", "type": "value_error"}]
            )
        try:
            upload_input = TranscribeInput(audio=audio, filename=upload.filename or None)
        except ValidationError as exc:
            raise _invalid(_prefixed(exc, ["body", "file"])) from exc
        return JobSubmission(
            task=task, params=params, audio=upload_input.audio, input_filename=upload_input.filename
        )
    finally:
        await form.close()


def _multipart_params(task: TaskName, raw: str | UploadFile | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, UploadFile):
        raise _invalid(
            [{"loc": ["body", "params"], "msg": "Expected a JSON string, got a file", "type": "string_type"}]
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _invalid(
            [{"loc": ["body", "params"], "msg": f"Invalid JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    try:
        params = TASK_PARAMS[task].model_validate(value, strict=True)
    except ValidationError as exc:
        raise _invalid(_prefixed(exc, ["body", "params"])) from exc
    return params.model_dump(mode="json", exclude_unset=True)


def _prefixed(exc: ValidationError, prefix: list[str]) -> list[dict[str, Any]]:
    details = validation_details(exc.errors(include_url=False))
    for item in details:
        item["loc"] = [*prefix, *item["loc"]]
    return details
