"""Burst: 1000 jobs submitted concurrently all reach a terminal state, exactly once each.

Cheap jobs (classify on the tiny model) through the session's gateway and worker; 100
requests in flight at a time. Prints the submission rate and the end-to-end throughput
(README, "Reliability").
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from deploy.local import stack
from tests.utils.jobs import TERMINAL

pytestmark = pytest.mark.timeout(300)

JOBS = 1000
IN_FLIGHT = 100


async def _burst(base_url: str) -> tuple[list[httpx.Response], list[dict], float, float]:
    limit = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as c:

        async def submit(i: int) -> httpx.Response:
            async with limit:
                return await c.post("/jobs", json={"task": "classify", "input": {"text": f"burst job {i}"}})

        async def settle(job_id: str) -> dict:
            async with limit:
                while True:
                    r = await c.get(f"/jobs/{job_id}", params={"wait": 30})
                    assert r.status_code == 200, r.text
                    if r.json()["status"] in TERMINAL:
                        return r.json()

        started = time.monotonic()
        created = await asyncio.gather(*(submit(i) for i in range(JOBS)))
        submitted_s = time.monotonic() - started
        ids = [r.json()["id"] for r in created if r.status_code == 202]
        finished = await asyncio.gather(*(settle(job_id) for job_id in ids))
        return created, finished, submitted_s, time.monotonic() - started


def test_a_thousand_concurrent_jobs_all_finish_exactly_once(
    client: httpx.Client, gateway: stack.Gateway, redis_server: stack.RedisServer
) -> None:
    created, finished, submitted_s, total_s = asyncio.run(_burst(gateway.base_url))
    print(
        f"\n{JOBS} jobs: submitted in {submitted_s:.1f} s ({JOBS / submitted_s:.0f} jobs/s), all terminal "
        f"after {total_s:.1f} s ({JOBS / total_s:.0f} jobs/s end to end)"
    )
    assert [r.status_code for r in created] == [202] * JOBS, {r.status_code for r in created}
    ids = [r.json()["id"] for r in created]
    assert len(set(ids)) == JOBS, "duplicate job ids"
    # submitted == terminal, each job once, each run once with its one result.
    assert sorted(j["id"] for j in finished) == sorted(ids)
    statuses = {j["status"] for j in finished}
    assert statuses == {"succeeded"}, [j for j in finished if j["status"] != "succeeded"][:3]
    assert {j["attempts"] for j in finished} == {1}
    assert all(j["result"] and j["result"]["label"] for j in finished)
    # Nothing left behind in the queue.
    db = redis_server.client()
    assert db.llen("text") == 0
