"""The POST /jobs request body in the OpenAPI schema.

The handler parses the request itself (two content types on one route), so FastAPI
cannot infer the body. It is described here from the same pydantic models that
validate it, with one example per task, and the models are added to the components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from api.job_requests import JSON_REQUEST_MODELS
from api.uploads import JSON_MEDIA_TYPE, MULTIPART_MEDIA_TYPE
from shared.task_schemas import JSON_EXAMPLES, TASK_PARAMS
from shared.tasks import AUDIO_INPUT_TASKS, TaskName

_REF = "#/components/schemas/{model}"
_AUDIO_TASKS = sorted(t.value for t in AUDIO_INPUT_TASKS)


def _component_schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    models = [*JSON_REQUEST_MODELS.values(), *(TASK_PARAMS[t] for t in sorted(AUDIO_INPUT_TASKS))]
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    by_name = {model.__name__: refs[(model, "validation")] for model in models}
    return by_name, top.get("$defs", {})


_REFS, COMPONENT_SCHEMAS = _component_schemas()

# GenerateInput's "exactly one of prompt / messages" is a model validator, which pydantic
# cannot put in the JSON schema; spelled out here so the schema accepts only what the API does.
COMPONENT_SCHEMAS["GenerateInput"]["oneOf"] = [
    {
        "required": ["prompt"],
        "properties": {"prompt": {"type": "string"}, "messages": {"type": "null"}},
    },
    {
        "required": ["messages"],
        "properties": {"messages": {"type": "array"}, "prompt": {"type": "null"}},
    },
]


def _json_body() -> dict[str, Any]:
    variants = {t.value: _REFS[model.__name__]["$ref"] for t, model in JSON_REQUEST_MODELS.items()}
    return {
        "schema": {
            "oneOf": [{"$ref": ref} for ref in variants.values()],
            "discriminator": {"propertyName": "task", "mapping": variants},
        },
        "examples": {
            task.value: {"summary": f"{task.value} job", "value": example}
            for task, example in JSON_EXAMPLES.items()
        },
    }


def _multipart_body() -> dict[str, Any]:
    # Today transcribe is the only audio task; its params model documents the field.
    params_ref = _REFS[TASK_PARAMS[TaskName.TRANSCRIBE].__name__]["$ref"]
    return {
        "schema": {
            "type": "object",
            "required": ["task", "file"],
            "additionalProperties": False,
            "properties": {
                "task": {"type": "string", "enum": _AUDIO_TASKS},
                "file": {
                    "type": "string",
                    "format": "binary",
                    "minLength": 1,
                    "description": "The audio (any format ffmpeg reads); not empty.",
                },
                "params": {"$ref": params_ref, "description": "Task parameters as a JSON object (optional)."},
            },
        },
        "encoding": {"params": {"contentType": JSON_MEDIA_TYPE}},
        "examples": {
            "transcribe": {
                "summary": "A transcribe job (curl -F task=transcribe -F file=@speech.wav -F 'params={...}')",
                "value": {"task": "transcribe", "file": "(the audio file)", "params": {"language": "en"}},
            }
        },
    }


def job_request_openapi() -> dict[str, Any]:
    """``openapi_extra`` for POST /jobs."""
    return {
        "requestBody": {
            "required": True,
            "description": "Text tasks take JSON; audio tasks (transcribe) take multipart/form-data. "
            "Unknown fields are refused.",
            "content": {JSON_MEDIA_TYPE: _json_body(), MULTIPART_MEDIA_TYPE: _multipart_body()},
        }
    }


def install_request_schemas(app: FastAPI) -> None:
    """Add the request models referenced by ``job_request_openapi`` to the components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in COMPONENT_SCHEMAS.items():
                schemas.setdefault(name, definition)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
