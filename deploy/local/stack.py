"""Real processes for the tests and the benchmark: redis-server, the worker (``python -m worker``)
and the gateway (uvicorn). Nothing is mocked: clients talk HTTP to the gateway, which talks to
Redis, which the worker consumes, exactly as in production (only smaller models).

Each ``start_*`` function returns a handle with ``stop()``; its output goes to a log file whose
tail is in the StackError raised when the process fails to come up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class StackError(RuntimeError):
    """A process of the stack could not start, or what it was waited for did not happen."""


# The Debian package of each program the stack runs.
APT_PACKAGES = {"redis-server": "redis-server", "espeak-ng": "espeak-ng", "ffmpeg": "ffmpeg", "sox": "sox"}


def require_binary(name: str) -> str:
    """Path of an executable, or StackError naming the command that installs it."""
    path = shutil.which(name)
    if path is None:
        raise StackError(
            f"'{name}' is not installed. Install it with `make system-packages` (or: apt-get install -y "
            f"{APT_PACKAGES.get(name, name)})."
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, chars: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-chars:]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{log_tail(self.log_path)}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        # SIGTERM first (Celery's warm shutdown, uvicorn's graceful exit), then the whole group.
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)


def spawn(name: str, cmd: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    full_env = {**os.environ, **(env or {})}
    # The repo root on the path, as `pip install -e .` would give; no stray AMULET_* from the caller.
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    popen = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    return Proc(name, popen, log_path)


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise StackError(
                f"{proc.name} exited with status {proc.popen.returncode} while waiting for {what}.\n"
                f"{proc.describe()}"
            )
        try:
            if predicate():
                return
        except StackError:  # the predicate saw a failure it can name: no point waiting
            raise
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(interval)
    detail = proc.describe() if proc is not None else ""
    raise StackError(f"Timed out after {timeout:.0f} s waiting for {what}.\n{detail}")


# -- Redis -------------------------------------------------------------------------------
@dataclass
class RedisServer:
    proc: Proc
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), decode_responses=True)

    def stop(self) -> None:
        self.proc.stop()


def start_redis(
    workdir: Path, *, appendonly: bool = False, port: int | None = None, extra_args: tuple[str, ...] = ()
) -> RedisServer:
    """A redis-server in ``workdir``. ``appendonly``: AOF persistence (as compose runs it), so
    a server started again with the same ``workdir`` and ``port`` comes back with its data."""
    binary = require_binary("redis-server")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = spawn(
        "redis-server",
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--dir",
            str(workdir),
            *extra_args,
        ],
        workdir / "redis.log",
    )
    server = RedisServer(proc, port)
    wait_for(lambda: server.client().ping(), 20, f"redis-server on port {port}", proc)
    return server


# -- worker ------------------------------------------------------------------------------
WORKER_READY_TIMEOUT_S = 180.0


def worker_env(
    redis_url: str,
    models: Mapping[str, str | os.PathLike | None],
    *,
    queues: str = "speech,text",
    health_file: Path,
    heartbeat_s: float = 1.0,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {
        "AMULET_REDIS_URL": redis_url,
        "AMULET_QUEUES": queues,
        "AMULET_DEVICE": "cpu",
        "AMULET_HEALTH_FILE": str(health_file),
        "AMULET_HEARTBEAT_INTERVAL_S": str(heartbeat_s),
        "AMULET_LOG_LEVEL": "INFO",
        # The Hub is unreachable in CI: fail at once instead of retrying downloads.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    for task in ("transcribe", "synthesize", "generate", "classify", "embed"):
        value = models.get(task)
        env[f"AMULET_{task.upper()}_MODEL"] = "" if value is None else str(value)
    env.update(extra or {})
    return env


def worker_heartbeats(client: redis.Redis) -> list[dict]:
    out = []
    for name in client.zrange("amulet:workers", 0, -1):
        blob = client.get(f"amulet:worker:{name}")
        if blob:
            out.append(json.loads(blob))
    return out


def start_worker(
    name: str,
    env: Mapping[str, str],
    log_path: Path,
    client: redis.Redis,
    timeout: float = WORKER_READY_TIMEOUT_S,
) -> Proc:
    """Start ``python -m worker`` and wait until its heartbeat in Redis says ``ready``."""
    proc = spawn(name, [PYTHON, "-m", "worker"], log_path, env)

    # Every worker the tests start has a Redis (server or db) of its own, so any heartbeat there is its.
    def ready() -> bool:
        for hb in worker_heartbeats(client):
            if hb.get("state") == "failed":
                raise StackError(f"{name} reported state 'failed': {hb.get('message')}\n{proc.describe()}")
            if hb.get("state") == "ready":
                proc.extra["heartbeat"] = hb
                return True
        return False

    wait_for(ready, timeout, f"{name} heartbeat state 'ready' in Redis", proc, interval=0.5)
    return proc


# -- gateway -----------------------------------------------------------------------------
@dataclass
class Gateway:
    proc: Proc
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 90.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def stop(self) -> None:
        self.proc.stop()


def start_gateway(
    name: str, redis_url: str, log_path: Path, extra: Mapping[str, str] | None = None
) -> Gateway:
    port = free_port()
    env = {
        "AMULET_REDIS_URL": redis_url,
        "AMULET_MAX_UPLOAD_BYTES": str(2_000_000),
        "AMULET_MAX_WAIT_S": "60",
        "AMULET_REQUIRED_QUEUES": "speech,text",
        "AMULET_WORKER_STALE_S": "15",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }
    proc = spawn(
        name,
        [
            PYTHON,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        log_path,
        env,
    )
    gateway = Gateway(proc, port)

    def healthy() -> bool:
        return httpx.get(f"{gateway.base_url}/healthz", timeout=2).status_code == 200

    wait_for(healthy, 60, f"{name} /healthz on port {port}", proc)
    return gateway
