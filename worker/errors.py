"""Errors that end a job as ``failed`` with a specific code instead of a generic one.

Anything raised while running a job that is not one of these becomes ``model_error``
(raised by a handler) or ``internal_error`` (raised elsewhere); see worker/runner.py.
"""

from __future__ import annotations

from shared.jobs import ErrorCode


class JobInputError(Exception):
    """The job's input cannot be processed; the client has to change it."""

    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(JobInputError):
    code = ErrorCode.INVALID_INPUT


class InvalidAudio(JobInputError):
    code = ErrorCode.INVALID_AUDIO


class InputExpired(JobInputError):
    code = ErrorCode.INPUT_EXPIRED


class StartupError(RuntimeError):
    """The worker cannot start (no GPU when one is required, a model that cannot be loaded)."""
