"""The OpenAPI text of the routes: response descriptions, headers, links, error answers, and the
POST /jobs request body.

The POST /jobs handler parses the request itself (two content types on one route), so FastAPI
cannot infer the body. It is described here from the same pydantic models that validate it,
with one example per task, and the models are added to the components.

Error answers are declared per route and status with the codes that route can answer
(``error_responses``); tests/api/test_error_docs.py checks the answers against them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from api.errors import ApiErrorCode as Code
from api.idempotency import REPLAYED_HEADER
from api.job_requests import JSON_REQUEST_MODELS
from api.schemas import ErrorResponse
from api.uploads import JSON_MEDIA_TYPE, MULTIPART_MEDIA_TYPE
from shared.jobs import Job
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
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # FastAPI's own: builds the schema and keeps it in app.openapi_schema
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in COMPONENT_SCHEMAS.items():
            schemas.setdefault(name, definition)
        return schema

    # FastAPI's documented way to extend the schema: replace the app's openapi method.
    app.openapi = openapi  # type: ignore[method-assign]


# -- error answers --------------------------------------------------------------------------------
_ERROR_MEANINGS = {
    401: "No API key, while the server has keys configured",
    403: "The API key is not one of the server's keys",
    404: "Not found",
    409: "The job is not in a state that allows this",
    413: "Request body over AMULET_MAX_UPLOAD_BYTES",
    415: "Not JSON / multipart, or the wrong one for the task",
    422: "Invalid request",
    429: "The task's queue is full; retry after `Retry-After` seconds",
    503: "Redis cannot be reached or is out of memory; retry after `Retry-After` seconds",
}
REDIS_ERRORS = (Code.REDIS_UNAVAILABLE, Code.REDIS_OUT_OF_MEMORY)
AUTH_ERRORS: dict[int, tuple[Code, ...]] = {401: (Code.UNAUTHORIZED,), 403: (Code.FORBIDDEN,)}


def error_responses(codes: dict[int, tuple[Code, ...]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the error body and the codes it can carry."""
    return {
        status: {
            "model": ErrorResponse,
            "description": f"{_ERROR_MEANINGS[status]} ({', '.join(f'`{c.value}`' for c in found)})",
        }
        for status, found in codes.items()
    }


def documented_codes(description: str) -> set[str]:
    """The error codes an ``error_responses`` description names."""
    inside = description[description.rfind("(") + 1 : description.rfind(")")]
    return {part.strip().strip("`") for part in inside.split(",") if part.strip().startswith("`")}


# -- the jobs routes ------------------------------------------------------------------------------
_LOCATION = {"description": "The job's URL.", "schema": {"type": "string"}}
_PREFERENCE_APPLIED = {
    "description": "wait=N when the Prefer: wait=N header was honoured (N after the cap).",
    "schema": {"type": "string"},
}
_REPLAY_HEADERS = {
    REPLAYED_HEADER: {
        "description": "`true`: the job was created by an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string"},
    },
    "Location": _LOCATION,
}
_GET_JOB_LINK = {
    "GetJob": {
        "operationId": "get_job",
        "parameters": {"job_id": "$response.body#/id"},
        "description": "Poll or wait for the job.",
    }
}
_NOT_FOUND = {404: (Code.JOB_NOT_FOUND,)}
_INVALID = {422: (Code.INVALID_REQUEST,)}
_UNAVAILABLE = {503: REDIS_ERRORS}

# POST /jobs reads Prefer itself, like Idempotency-Key (see api/idempotency.py read_key): a
# declared header parameter costs FastAPI CPU on every request, header or not.
_POST_PREFER_DESCRIPTION = (
    "RFC 7240 `wait=N`: after creating the job, wait up to N seconds (capped by AMULET_MAX_WAIT_S) for "
    "it to finish and answer with the job as it is then: 201 when it finished, 202 when it is still "
    "queued or running. One request instead of POST then GET ?wait=N, for a short job."
)
_POST_PREFER_PARAMETER = {
    "name": "prefer",
    "in": "header",
    "required": False,
    "description": _POST_PREFER_DESCRIPTION,
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": _POST_PREFER_DESCRIPTION,
        "title": "Prefer",
    },
}


def create_job_openapi(idempotency_parameter: dict[str, Any]) -> dict[str, Any]:
    """The route arguments of POST /jobs beyond its path and handler."""
    return {
        "status_code": 202,
        "response_model": Job,
        "summary": "Create a job, optionally waiting for it to finish",
        "operation_id": "create_job",
        "responses": {
            202: {
                "description": "Accepted: the job is queued (after a `Prefer: wait`: still queued or "
                "running).",
                "headers": {"Location": _LOCATION, "Preference-Applied": _PREFERENCE_APPLIED},
                "links": _GET_JOB_LINK,
            },
            201: {
                "model": Job,
                "description": "With `Prefer: wait=N` only: the job was created and finished (succeeded, "
                "failed or canceled) within the wait; the body is the finished job, result included.",
                "headers": {"Location": _LOCATION, "Preference-Applied": _PREFERENCE_APPLIED},
                "links": _GET_JOB_LINK,
            },
            200: {
                "model": Job,
                "description": "A replay: an earlier request with the same Idempotency-Key and body "
                "created this job (in whatever state it is now, or once the `Prefer: wait` ends).",
                "headers": {**_REPLAY_HEADERS, "Preference-Applied": _PREFERENCE_APPLIED},
                "links": _GET_JOB_LINK,
            },
            **error_responses(
                {
                    413: (Code.PAYLOAD_TOO_LARGE,),
                    415: (Code.UNSUPPORTED_MEDIA_TYPE,),
                    422: (
                        Code.INVALID_REQUEST,
                        Code.UNKNOWN_TASK,
                        Code.TASK_DISABLED,
                        Code.IDEMPOTENCY_KEY_REUSED,
                    ),
                    429: (Code.QUEUE_FULL,),
                    **_UNAVAILABLE,
                }
            ),
        },
        "openapi_extra": {
            **job_request_openapi(),
            "parameters": [idempotency_parameter, _POST_PREFER_PARAMETER],
        },
    }


LIST_JOBS: dict[str, Any] = {
    "summary": "List your jobs, newest first",
    "operation_id": "list_jobs",
    "description": "The jobs created with the caller's API key (every job for an admin key, or when "
    "the server has no keys), newest first, without their results. Follow `next_cursor` for the next "
    "page; a page can be shorter than `limit` and still have a next one when filters match few jobs.",
    "responses": error_responses({**_INVALID, **_UNAVAILABLE}),
}

GET_JOB: dict[str, Any] = {
    "response_model": Job,
    "summary": "Get a job, optionally waiting for it to finish",
    "operation_id": "get_job",
    "responses": {
        200: {
            "description": "The job as it is now (terminal, or the wait ended).",
            "headers": {"Preference-Applied": _PREFERENCE_APPLIED},
        },
        **error_responses({**_NOT_FOUND, **_INVALID, **_UNAVAILABLE}),
    },
}

CANCEL_JOB: dict[str, Any] = {
    "response_model": Job,
    "summary": "Cancel a job",
    "operation_id": "cancel_job",
    "responses": {
        200: {"description": "The job was queued and is now `canceled`; it will never run."},
        202: {
            "model": Job,
            "description": "The job is running: cancellation was requested and the job ends `canceled` "
            "at the next point its model allows (until then it shows `running`).",
        },
        **error_responses({**_NOT_FOUND, 409: (Code.JOB_FINISHED,), **_INVALID, **_UNAVAILABLE}),
    },
}

DELETE_JOB: dict[str, Any] = {
    "status_code": 204,
    "summary": "Delete a job, its input and its result",
    "operation_id": "delete_job",
    "responses": {
        204: {
            "description": "Deleted: a queued job will never run, a running one is stopped, and the job "
            "answers 404 from now on."
        },
        **error_responses({**_NOT_FOUND, **_INVALID, **_UNAVAILABLE}),
    },
}

GET_RESULT: dict[str, Any] = {
    "summary": "Download a binary result (synthesize: audio/wav)",
    "operation_id": "get_job_result",
    "responses": {
        200: {
            "description": "The result file.",
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(
            {
                404: (Code.JOB_NOT_FOUND, Code.NO_BINARY_RESULT),
                409: (Code.RESULT_NOT_READY,),
                **_INVALID,
                **_UNAVAILABLE,
            }
        ),
    },
}
