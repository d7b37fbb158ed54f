"""Reading request bodies with a byte limit enforced while streaming.

A body is never read whole before its size is known to be acceptable: a declared
Content-Length over the limit is refused before the first byte is read, and chunked
bodies are counted as they arrive. Multipart file parts go through Starlette's
streaming parser, which spools them to a temporary file (memory up to 1 MiB, then disk).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

from api.errors import ApiError, ApiErrorCode

JSON_MEDIA_TYPE = "application/json"
MULTIPART_MEDIA_TYPE = "multipart/form-data"

# Non-file multipart fields (task, params) are small; cap them well below the upload limit.
MAX_FORM_FIELD_BYTES = 64 * 1024
MAX_FORM_FIELDS = 8
MAX_FORM_FILES = 1


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == JSON_MEDIA_TYPE or (media.startswith("application/") and media.endswith("+json"))


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        ApiErrorCode.PAYLOAD_TOO_LARGE,
        f"The request body is larger than the limit of {limit} bytes (AMULET_MAX_UPLOAD_BYTES).",
        details={"max_bytes": limit},
    )


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse before reading when the client already says the body is too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body chunk by chunk, failing with 413 as soon as it passes ``limit``."""
    check_declared_length(request, limit)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


async def read_json_body(request: Request, limit: int) -> Any:
    # JSON needs the whole document to parse; the limit bounds what is buffered.
    body = bytearray()
    async for chunk in limited_stream(request, limit):
        body.extend(chunk)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            422,
            ApiErrorCode.INVALID_REQUEST,
            "The body is not valid JSON.",
            details=[{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}],
        ) from exc


async def read_multipart(request: Request, limit: int) -> FormData:
    """Parse multipart/form-data from the counting stream. The caller closes the form."""
    parser = MultiPartParser(
        request.headers,
        limited_stream(request, limit),
        max_files=MAX_FORM_FILES,
        max_fields=MAX_FORM_FIELDS,
        max_part_size=MAX_FORM_FIELD_BYTES,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ApiError(
            422,
            ApiErrorCode.INVALID_REQUEST,
            f"The multipart body could not be parsed: {exc.message}",
            details=[{"loc": ["body"], "msg": exc.message, "type": "multipart_invalid"}],
        ) from exc
