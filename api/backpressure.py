"""Refusing new jobs while a queue is full (AMULET_MAX_QUEUE_DEPTH), with 429 + Retry-After.

The depth is the number of messages waiting in the queue's Redis lists, as kombu (Celery's
Redis transport) stores them: a list named after the queue for the default priority, plus
one list per higher priority step named ``<queue>\\x06\\x16<step>``. Messages a worker has
taken but not acknowledged (running jobs) are not waiting and are not counted.

The depth is checked in the same Lua script that creates the job and pushes its message
(shared/redis_protocol.py create_job), so concurrent requests cannot overshoot the limit.
"""

from __future__ import annotations

from api.errors import ApiError, ApiErrorCode
from shared.tasks import Queue

# Ref: kombu/transport/redis.py, Channel.sep, PRIORITY_STEPS and _q_for_pri.
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
# How long a client should wait before retrying: a queue does not drain in less.
QUEUE_FULL_RETRY_AFTER_S = 10


def queue_lists(queue: Queue) -> list[str]:
    """The Redis lists that hold the queue's waiting messages, one per priority step."""
    return [
        queue.value if step == 0 else f"{queue.value}{KOMBU_PRIORITY_SEPARATOR}{step}"
        for step in KOMBU_PRIORITY_STEPS
    ]


def queue_full(queue: Queue, depth: int, max_depth: int) -> ApiError:
    return ApiError(
        429,
        ApiErrorCode.QUEUE_FULL,
        f"The {queue.value!r} queue already holds {depth} waiting jobs (AMULET_MAX_QUEUE_DEPTH="
        f"{max_depth}); retry after {QUEUE_FULL_RETRY_AFTER_S} s.",
        details={"queue": queue.value, "depth": depth, "max_depth": max_depth},
        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
    )
