"""The ``Idempotency-Key`` header of POST /jobs.

A key is stored per caller as ``amulet:idempotency:<owner>:<key>`` -> "<job id> <fingerprint>",
written by the same Lua script that creates the job record (shared/redis_protocol.py create_job),
which first checks the key atomically: of concurrent identical requests exactly one creates a job
and the others answer with it. Keys are per API key (owner), so one client's key never answers
with another client's job. The fingerprint is a SHA-256 of a canonical form of what the job does
(task, input, params and, for uploads, the file's SHA-256), so the same key with another body is
refused instead of silently answered with a job that does something else.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import StringConstraints, TypeAdapter, ValidationError
from redis.asyncio import Redis
from starlette.datastructures import Headers

from api.errors import ApiError, ApiErrorCode, invalid_message, validation_details
from api.job_requests import JobSubmission
from shared import redis_keys
from shared.redis_protocol import IdempotencyClaim, StoredClaim

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Set to "true" on an answer that returns the job an earlier request created.
REPLAYED_HEADER = "Idempotency-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII without spaces: safe in a header, a log line and a Redis key.
KEY_PATTERN = r"^[!-~]+$"
KEY_DESCRIPTION = (
    "A key of your choice (e.g. a UUID, at most 255 printable ASCII characters). "
    "Repeating the request with the same key and body answers 200 with the same job instead of "
    "creating another; the same key with a different body is refused (422 `idempotency_key_reused`). "
    "Keys are kept AMULET_IDEMPOTENCY_TTL_S."
)

_KEY = TypeAdapter(
    Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)]
)


def read_key(headers: Headers) -> str | None:
    """The request's Idempotency-Key, validated as FastAPI validates a declared header parameter
    (the same 422 body). POST /jobs reads it itself because a declared header parameter cost
    FastAPI about 25 us per request (7% of POST /jobs), key or no key; key_parameter_openapi()
    documents it."""
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    try:
        return _KEY.validate_python(raw)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False))
        for item in details:
            item["loc"] = ["header", IDEMPOTENCY_HEADER]
        raise ApiError(422, ApiErrorCode.INVALID_REQUEST, invalid_message(details), details=details) from None


def key_parameter_openapi() -> dict[str, Any]:
    """The header's OpenAPI parameter, as FastAPI writes an optional ``Header`` parameter."""
    return {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": KEY_DESCRIPTION,
        "schema": {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
                {"type": "null"},
            ],
            "title": IDEMPOTENCY_HEADER,
            "description": KEY_DESCRIPTION,
        },
    }


def fingerprint(submission: JobSubmission) -> str:
    canonical = {
        "task": submission.task.value,
        "input": submission.input,
        "params": submission.params,
        "file_sha256": hashlib.sha256(submission.audio).hexdigest() if submission.audio is not None else None,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def claim_for(key: str | None, owner: str, submission: JobSubmission, ttl_s: int) -> IdempotencyClaim | None:
    """The claim of a request; the key was validated by read_key."""
    return None if key is None else IdempotencyClaim(owner, key, fingerprint(submission), ttl_s)


def ensure_same_request(claim: IdempotencyClaim, stored: StoredClaim) -> None:
    if stored.fingerprint != claim.fingerprint:
        raise ApiError(
            422,
            ApiErrorCode.IDEMPOTENCY_KEY_REUSED,
            f"The {IDEMPOTENCY_HEADER} {claim.key!r} was already used for a different request (job "
            f"{stored.job_id}). Send the same body to get that job again, or use a new key for a new job.",
            details={"job_id": stored.job_id},
        )


async def stored_claim(redis: Redis, claim: IdempotencyClaim) -> StoredClaim | None:
    raw = await redis.get(redis_keys.idempotency(claim.owner, claim.key))
    return None if raw is None else StoredClaim.parse(raw)
