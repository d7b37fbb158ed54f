"""More concurrent requests than the gateway has Redis connections: they wait for a connection
(the pool blocks, up to AMULET_REDIS_POOL_TIMEOUT_S) instead of failing with a 503."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import stack

pytestmark = pytest.mark.timeout(120)

DB = 5
CLIENTS = 300  # well above the pool size set below


@pytest.fixture
def small_pool_gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    """A gateway with only 8 Redis connections, on an emptied db where no worker listens."""
    redis_server.client(DB).flushdb()
    gw = stack.start_gateway(
        "small-pool-gateway",
        redis_server.url(DB),
        run_dir / "small-pool-gateway.log",
        {"AMULET_REDIS_MAX_CONNECTIONS": "8", "AMULET_MAX_QUEUE_DEPTH": str(10 * CLIENTS)},
    )
    yield gw
    gw.stop()


def test_a_burst_beyond_the_connection_pool_is_queued_not_refused(
    small_pool_gateway: stack.Gateway, redis_server: stack.RedisServer
) -> None:
    async def burst() -> tuple[list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=small_pool_gateway.base_url, timeout=60, limits=limits) as c:
            body = {"task": "embed", "input": {"texts": ["many clients"]}}
            created = await asyncio.gather(*(c.post("/jobs", json=body) for _ in range(CLIENTS)))
            ids = [r.json().get("id") for r in created]
            read = await asyncio.gather(*(c.get(f"/jobs/{job_id}") for job_id in ids if job_id))
            return created, read

    created, read = asyncio.run(burst())
    failures = [(r.status_code, r.text) for r in created + read if r.status_code not in (200, 202)]
    assert not failures, failures[:3]
    assert sorted(r.status_code for r in created) == [202] * CLIENTS
    assert all(r.json()["status"] == "queued" for r in read)
    db = redis_server.client(DB)
    assert db.llen("text") == CLIENTS
    assert len(db.keys("amulet:job:*")) == CLIENTS
