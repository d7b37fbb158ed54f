"""Tells the gateway (Redis) and the container healthcheck (a file) what this worker is doing.

A thread, not a Celery feature: it must report ``loading`` while models load, before
Celery starts, and keep reporting while a long batch keeps the model busy. What it reports is
shared/worker_heartbeat.py's WorkerHeartbeat, the model the gateway reads back.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from shared import redis_keys
from shared.settings import WorkerSettings
from shared.worker_heartbeat import WorkerHeartbeat, WorkerState

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, client: redis.Redis, settings: WorkerSettings, hostname: str) -> None:
        self.redis = client
        self.settings = settings
        self.hostname = hostname
        self.interval = settings.HEARTBEAT_INTERVAL_S
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redis_ok = True
        self.info = WorkerHeartbeat(
            hostname=hostname,
            pid=os.getpid(),
            state="loading",
            queues=[q.value for q in settings.QUEUES],
            started_at=time.time(),
        )

    def update(self, **fields: Any) -> None:
        """Change reported fields (of WorkerHeartbeat) and publish at once (a state change should
        not wait a beat)."""
        unknown = set(fields) - set(WorkerHeartbeat.model_fields)
        if unknown:
            raise TypeError(f"not heartbeat fields: {sorted(unknown)}")
        with self._lock:
            # Validated, so a mistyped field fails here rather than in the gateway.
            self.info = WorkerHeartbeat.model_validate({**self.info.model_dump(), **fields})
        self.beat()

    def set_state(self, state: WorkerState, message: str | None = None) -> None:
        self.update(state=state, message=message)

    def beat(self) -> None:
        with self._lock:
            now = time.time()
            self.info = self.info.model_copy(update={"updated_at": now})
            body = self.info.model_dump_json()
        self._write_file(body)
        self._write_redis(body, now)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self, *, remove: bool = True) -> None:
        """Stop beating; ``remove`` withdraws the worker from Redis so the gateway stops counting it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        if remove:
            try:
                self.redis.delete(redis_keys.worker(self.hostname))
                self.redis.zrem(redis_keys.WORKERS_ZSET, self.hostname)
            except redis.RedisError as exc:
                log.warning("could not remove the heartbeat from Redis: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the heartbeat must outlive any surprise
                log.exception("heartbeat failed")

    def _write_redis(self, body: str, now: float) -> None:
        ttl = max(1, math.ceil(3 * self.interval))
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(redis_keys.worker(self.hostname), body, ex=ttl)
            pipe.zadd(redis_keys.WORKERS_ZSET, {self.hostname: now})
            pipe.execute()
        except redis.RedisError as exc:
            if self._redis_ok:  # log an outage once, not every beat
                log.warning("heartbeat: Redis unreachable (%s); retrying every %.0f s", exc, self.interval)
            self._redis_ok = False
            return
        if not self._redis_ok:
            log.info("heartbeat: Redis reachable again")
        self._redis_ok = True

    def _write_file(self, body: str) -> None:
        path = Path(self.settings.HEALTH_FILE)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-and-rename so the healthcheck never reads half a file.
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".health-", delete=False) as tmp:
                tmp.write(body)
            os.replace(tmp.name, path)
        except OSError as exc:
            log.warning("heartbeat: cannot write the health file %s: %s", path, exc)
