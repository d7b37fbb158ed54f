"""Container healthcheck: ``python -m worker.healthcheck``.

Reads the health file the heartbeat writes (a WorkerHeartbeat, shared/worker_heartbeat.py);
exits 0 (and prints ``ready``) only when the worker is ready and the file was updated recently,
i.e. the process is alive and beating.
It does not touch Redis: a Redis outage is not a reason to restart the worker.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shared.settings import WorkerSettings, worker_settings
from shared.worker_heartbeat import WorkerHeartbeat


def check(settings: WorkerSettings, now: float | None = None) -> tuple[bool, str]:
    path = Path(settings.HEALTH_FILE)
    try:
        info = WorkerHeartbeat.model_validate_json(path.read_text())
    except FileNotFoundError:
        return False, f"starting: no health file at {path} yet"
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        return False, f"unreadable health file {path}: {exc}"
    now = time.time() if now is None else now
    age = now - (info.updated_at or 0.0)
    # Three missed beats: the process is hung or dead, whatever state it last wrote.
    stale_after = max(3 * settings.HEARTBEAT_INTERVAL_S, 10.0)
    if age > stale_after:
        return False, f"stale: last heartbeat {age:.0f} s ago (state {info.state})"
    if info.state == "ready":
        return True, "ready"
    if info.state == "failed":
        return False, f"failed: {info.message}"
    return False, info.state


def main() -> int:
    healthy, message = check(worker_settings())
    print(message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
