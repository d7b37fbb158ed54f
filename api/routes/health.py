"""GET /healthz (the process is up) and GET /readyz (Redis answers and required queues have
ready workers). Neither ever answers 500: readiness problems are reported, not raised."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.dependencies import GatewayDep
from api.live_workers import ready_workers_per_queue
from api.schemas import HealthResponse, QueueReadiness, ReadyResponse

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

# A readiness probe must answer quickly even when Redis hangs.
REDIS_PROBE_TIMEOUT_S = 2.0


def no_ready_worker(queue: str) -> str:
    """The problem /readyz names for a required queue without a ready worker (README quotes it)."""
    return f"no ready worker serves the queue {queue!r}"


@router.get(
    "/healthz", response_model=HealthResponse, summary="Liveness: the process is up", operation_id="healthz"
)
async def healthz() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: Redis answers and every required queue has a ready worker",
    operation_id="readyz",
    responses={503: {"model": ReadyResponse, "description": "Not ready; `problems` says why."}},
)
async def readyz(gateway: GatewayDep) -> JSONResponse:
    redis = gateway.redis
    queues = [q.value for q in gateway.settings.REQUIRED_QUEUES]
    problems: list[str] = []
    try:
        async with asyncio.timeout(REDIS_PROBE_TIMEOUT_S):
            await redis.ping()
            workers = await gateway.worker_view.refresh(redis)
        redis_state = "ok"
        ready = ready_workers_per_queue(workers, queues)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("Readiness: Redis unreachable: %r", exc)
        redis_state = "unreachable"
        ready = dict.fromkeys(queues, 0)
        problems.append(f"Redis is unreachable ({type(exc).__name__})")
    if redis_state == "ok":
        problems.extend(no_ready_worker(q) for q, n in ready.items() if n == 0)
    body = ReadyResponse(
        status="not_ready" if problems else "ready",
        redis=redis_state,
        queues={q: QueueReadiness(ready_workers=n) for q, n in ready.items()},
        problems=problems,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if problems else 200)
