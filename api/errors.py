"""The one error body of the API and the exception handlers that produce it.

Every failure, including FastAPI's own validation errors, unknown routes and a lost
Redis connection, answers ``{"error": {"code", "message", "details"}}`` (docs/api.md).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class ApiErrorCode(StrEnum):
    """Every ``error.code`` the gateway answers with (docs/api.md has the table, checked by a test)."""

    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    JOB_NOT_FOUND = "job_not_found"
    NO_BINARY_RESULT = "no_binary_result"
    RESULT_NOT_READY = "result_not_ready"
    JOB_FINISHED = "job_finished"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNKNOWN_TASK = "unknown_task"
    TASK_DISABLED = "task_disabled"
    INVALID_REQUEST = "invalid_request"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    QUEUE_FULL = "queue_full"
    REDIS_UNAVAILABLE = "redis_unavailable"
    REDIS_OUT_OF_MEMORY = "redis_out_of_memory"
    # Starlette's own answers: an unknown route, a method the route does not have.
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BAD_REQUEST = "bad_request"
    NOT_ACCEPTABLE = "not_acceptable"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"


_GENERIC_CODES = {
    400: ApiErrorCode.BAD_REQUEST,
    401: ApiErrorCode.UNAUTHORIZED,
    403: ApiErrorCode.FORBIDDEN,
    404: ApiErrorCode.NOT_FOUND,
    405: ApiErrorCode.METHOD_NOT_ALLOWED,
    406: ApiErrorCode.NOT_ACCEPTABLE,
    413: ApiErrorCode.PAYLOAD_TOO_LARGE,
    415: ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
}

# How Redis refuses a write under maxmemory with the noeviction policy.
REDIS_OOM_PREFIX = "OOM command not allowed"
REDIS_RETRY_AFTER_S = 5


def is_out_of_memory(exc: BaseException) -> bool:
    """True for Redis's maxmemory refusal, raised directly or wrapped (kombu, a MULTI's EXECABORT)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RedisOutOfMemoryError) or REDIS_OOM_PREFIX in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def redis_out_of_memory(details: Any = None) -> ApiError:
    return ApiError(
        503,
        ApiErrorCode.REDIS_OUT_OF_MEMORY,
        "The job store (Redis) is full (maxmemory reached; it never evicts jobs) and refused the "
        "write, so nothing was stored. Retry later; operators: raise Redis's maxmemory or shorten "
        "AMULET_RESULT_TTL_S.",
        details=details,
        headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
    )


class ApiError(Exception):
    """Raised anywhere in a request; rendered as the error body with its status."""

    def __init__(
        self,
        status_code: int,
        code: ApiErrorCode,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status_code: int,
    code: ApiErrorCode,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code.value, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """pydantic's errors reduced to what is safe to serialise and useful to clients."""
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in errors
    ]


def invalid_message(details: list[dict[str, Any]]) -> str:
    """A message that names what to fix: the first problem, and how many more there are."""
    if not details:
        return "The request is invalid."
    first = details[0]
    # "body" is where FastAPI says the error is; clients think in their own field names.
    where = ".".join(str(part) for part in first["loc"] if part != "body") or "request"
    more = f" (and {len(details) - 1} more problem(s), see details)" if len(details) > 1 else ""
    return f"Invalid request: {where}: {first['msg']}{more}."


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    return error_response(422, ApiErrorCode.INVALID_REQUEST, invalid_message(details), details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _GENERIC_CODES.get(exc.status_code, ApiErrorCode.HTTP_ERROR)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route matching the path only;
        # /jobs/{job_id} has two (GET, DELETE), and RFC 9110 wants them all.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route serves at the request's path: each method is tried against every
    route with BaseRoute.matches, the public matching API (FastAPI nests included routers in
    routes of its own, so reading the routes' ``methods`` misses them)."""
    return [
        method
        for method in _HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _redis_error(_: Request, exc: Exception) -> JSONResponse:
    # Connection and timeout errors mean Redis is down or unreachable; any other Redis
    # error still means the job store cannot serve us, and a 503 tells clients to retry
    # rather than that the request was wrong.
    if is_out_of_memory(exc):
        log.warning("Redis is out of memory: %r", exc)
        oom = redis_out_of_memory()
        return error_response(oom.status_code, oom.code, oom.message, headers=oom.headers)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        message = "The job store (Redis) cannot be reached; retry later."
    else:
        log.warning("Redis refused a command: %r", exc)
        message = "The job store (Redis) refused the request; retry later."
    return error_response(
        503, ApiErrorCode.REDIS_UNAVAILABLE, message, headers={"Retry-After": str(REDIS_RETRY_AFTER_S)}
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("Unhandled error", exc_info=exc)
    return error_response(500, ApiErrorCode.INTERNAL_ERROR, "Internal error in the gateway.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(Exception, _unexpected_error)
