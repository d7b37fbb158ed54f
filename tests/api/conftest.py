from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils import stack


@pytest.fixture(scope="session")
def dead_redis_client(run_dir: Path) -> Iterator[httpx.Client]:
    """A gateway whose Redis URL points at a port where nothing listens."""
    gw = stack.start_gateway(
        "dead-redis-gateway", f"redis://127.0.0.1:{stack.free_port()}/0", run_dir / "dead-redis-gateway.log"
    )
    with gw.client(timeout=30) as c:
        yield c
    gw.stop()
