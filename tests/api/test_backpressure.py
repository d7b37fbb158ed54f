"""Backpressure: beyond AMULET_MAX_QUEUE_DEPTH waiting jobs in a queue, POST /jobs is 429."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from deploy.local import stack
from tests.api.conftest import SMALL_QUEUE_DEPTH
from tests.utils.jobs import assert_error_body, create_json_job

pytestmark = pytest.mark.timeout(60)


def test_full_queue_answers_429_with_retry_after(
    small_queue_gateway: stack.Gateway, redis_server: stack.RedisServer
) -> None:
    with small_queue_gateway.client() as c:
        for i in range(SMALL_QUEUE_DEPTH):
            create_json_job(c, "embed", {"texts": [f"job {i}"]})
        r = c.post("/jobs", json={"task": "classify", "input": {"text": "one too many"}})
        err = assert_error_body(r, 429, "queue_full")
        assert int(r.headers["retry-after"]) > 0
        assert err["details"] == {"queue": "text", "depth": SMALL_QUEUE_DEPTH, "max_depth": SMALL_QUEUE_DEPTH}
        assert "AMULET_MAX_QUEUE_DEPTH" in err["message"]
        # Nothing was stored for the refused request.
        db = redis_server.client(2)
        assert len(db.keys("amulet:job:*")) == SMALL_QUEUE_DEPTH
        # The limit is per queue: the speech queue still takes jobs.
        r = c.post("/jobs", data={"task": "transcribe"}, files={"file": ("a.wav", b"not audio")})
        assert r.status_code == 202, r.text


def test_depth_counts_every_priority_list(
    small_queue_gateway: stack.Gateway, redis_server: stack.RedisServer
) -> None:
    # kombu keeps higher-priority messages in "<queue>\x06\x16<step>" lists; they wait too.
    db = redis_server.client(2)
    db.lpush("text\x06\x169", "m1", "m2")
    db.lpush("text\x06\x163", "m3")
    with small_queue_gateway.client() as c:
        r = c.post("/jobs", json={"task": "embed", "input": {"texts": ["x"]}})
    assert_error_body(r, 429, "queue_full")


def test_queue_with_room_accepts(small_queue_gateway: stack.Gateway) -> None:
    with small_queue_gateway.client() as c:
        r: httpx.Response = c.post("/jobs", json={"task": "embed", "input": {"texts": ["x"]}})
    assert r.status_code == 202, r.text


def test_concurrent_requests_cannot_overshoot_the_limit(
    small_queue_gateway: stack.Gateway, redis_server: stack.RedisServer
) -> None:
    # The depth is checked in the script that creates and queues the job (api/job_store.py), so
    # a burst is cut at the limit exactly, not at the limit plus the requests in flight.
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=small_queue_gateway.base_url, timeout=30) as c:
            body = {"task": "embed", "input": {"texts": ["burst"]}}
            return await asyncio.gather(*(c.post("/jobs", json=body) for _ in range(4 * SMALL_QUEUE_DEPTH)))

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses == [202] * SMALL_QUEUE_DEPTH + [429] * (3 * SMALL_QUEUE_DEPTH)
    db = redis_server.client(2)
    assert db.llen("text") == SMALL_QUEUE_DEPTH
    assert len(db.keys("amulet:job:*")) == SMALL_QUEUE_DEPTH
