"""Load generators: wrk for raw HTTP throughput, aiohttp for jobs at saturation (loopback only,
bounded in count and time).

The saturation client is aiohttp rather than httpx because it shares the 2 cores with what it
measures: httpx's async client cost about 12 ms of CPU per job (two requests) at 64 concurrent
clients, aiohttp about 0.6 ms, and with httpx the client, not the worker, set the pace
(docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"task": "embed", "input": {"texts": ["hello world"]}}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class HttpLoad:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_post(url: str, seconds: float, connections: int) -> HttpLoad:
    """POST /jobs as fast as ``connections`` keep-alive connections allow (one wrk thread)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found: apt-get install wrk (make bench installs it)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", f.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    Path(f.name).unlink()
    pct = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    return HttpLoad(rps, pct["50"], pct["99"], errors)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Latencies (ms) of ``n`` sequential calls."""
    return timed_alternately([fn], n)[0]


def timed_alternately(fns: list[Callable[[], object]], n: int) -> list[list[float]]:
    """Latencies (ms) of ``n`` calls of each function, taking turns, so that a slow spell of the
    shared machine hits all of them alike."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(n):
        for fn, latencies in zip(fns, out, strict=True):
            start = time.perf_counter()
            fn()
            latencies.append((time.perf_counter() - start) * 1000)
    return out


# Clients ask POST /jobs to hold the answer until the job is done (docs/api.md, Prefer: wait):
# one request per job instead of a POST and a GET, as a client of the service would do it.
PREFER_WAIT = {"Prefer": "wait=30"}


async def saturate(
    base_url: str, make_request: Callable[[aiohttp.ClientSession], Awaitable[dict]], jobs: int, users: int
) -> tuple[float, list[dict]]:
    """``users`` clients each submit a job and wait for it, again and again, until ``jobs`` finished.
    Returns (jobs per second, the finished jobs)."""
    done: list[dict] = []
    left = jobs
    connector = aiohttp.TCPConnector(limit=users * 2)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=timeout) as client:

        async def user() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                created = await make_request(client)
                if "status" not in created:
                    raise RuntimeError(f"POST /jobs was refused: {created}")
                job = created
                while job["status"] not in ("succeeded", "failed", "canceled"):
                    async with client.get(f"/jobs/{created['id']}", params={"wait": "30"}) as r:
                        job = await r.json()
                done.append(job)

        start = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(users)))
        elapsed = time.perf_counter() - start
    return len(done) / elapsed, done
