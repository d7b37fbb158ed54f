from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import stack


@pytest.fixture(scope="session")
def dead_redis_client(run_dir: Path) -> Iterator[httpx.Client]:
    """A gateway whose Redis URL points at a port where nothing listens."""
    gw = stack.start_gateway(
        "dead-redis-gateway", f"redis://127.0.0.1:{stack.free_port()}/0", run_dir / "dead-redis-gateway.log"
    )
    with gw.client(timeout=30) as c:
        yield c
    gw.stop()


API_KEYS = ("first-key-0123", "second-key-4567")


@pytest.fixture(scope="session")
def auth_gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    """A gateway with two API keys configured, on Redis db 3 (no worker: jobs stay queued)."""
    gw = stack.start_gateway(
        "auth-gateway",
        redis_server.url(3),
        run_dir / "auth-gateway.log",
        {"AMULET_API_KEYS": ",".join(API_KEYS)},
    )
    yield gw
    gw.stop()


SMALL_QUEUE_DEPTH = 3


@pytest.fixture
def small_queue_gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    """A gateway with AMULET_MAX_QUEUE_DEPTH=3 on an emptied Redis db 2 where no worker listens."""
    redis_server.client(2).flushdb()
    gw = stack.start_gateway(
        "small-queue-gateway",
        redis_server.url(2),
        run_dir / "small-queue-gateway.log",
        {"AMULET_MAX_QUEUE_DEPTH": str(SMALL_QUEUE_DEPTH)},
    )
    yield gw
    gw.stop()


OWNER_KEYS = ("alice-key-0123", "bob-key-4567")
ADMIN_KEY = "admin-key-89ab"


@pytest.fixture(scope="module")
def owners_gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    """Two user keys and an admin key, on an emptied Redis db 8 (no worker: jobs stay queued)."""
    redis_server.client(8).flushdb()
    gw = stack.start_gateway(
        "owners-gateway",
        redis_server.url(8),
        run_dir / "owners-gateway.log",
        {"AMULET_API_KEYS": ",".join(OWNER_KEYS), "AMULET_ADMIN_API_KEYS": ADMIN_KEY},
    )
    yield gw
    gw.stop()
