"""The worker's heartbeat in Redis and its health file, as docs/api.md describes them (the gateway's
/tasks and /readyz are built from these)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.utils import stack

pytestmark = pytest.mark.timeout(60)

DOCUMENTED_FIELDS = {
    "hostname",
    "pid",
    "state",
    "queues",
    "device",
    "dtype",
    "cuda_available",
    "gpu_reserved",
    "tasks",
    "started_at",
    "updated_at",
    "message",
}


def _only_heartbeat(redis_server: stack.RedisServer) -> dict:
    beats = stack.worker_heartbeats(redis_server.client())
    assert len(beats) == 1, beats
    return beats[0]


def test_heartbeat_has_the_documented_fields_and_reports_every_model(
    worker: stack.Proc, redis_server: stack.RedisServer, tiny_model_dirs: dict[str, Path]
) -> None:
    hb = _only_heartbeat(redis_server)
    assert DOCUMENTED_FIELDS <= set(hb), set(hb) ^ DOCUMENTED_FIELDS
    assert hb["state"] == "ready"
    assert hb["pid"] == worker.popen.pid
    assert sorted(hb["queues"]) == ["speech", "text"]
    assert (hb["device"], hb["dtype"]) == ("cpu", "float32")
    assert set(hb["tasks"]) == set(tiny_model_dirs)
    for task, model_dir in tiny_model_dirs.items():
        report = hb["tasks"][task]
        assert report["enabled"] is True, (task, report)
        assert Path(report["model"]) == Path(model_dir)
        assert (report["device"], report["dtype"]) == ("cpu", "float32")


def test_heartbeat_is_refreshed_and_expires_within_three_intervals(
    worker: stack.Proc, redis_server: stack.RedisServer
) -> None:
    client = redis_server.client()
    first = _only_heartbeat(redis_server)
    ttl = client.ttl(f"amulet:worker:{first['hostname']}")
    # AMULET_HEARTBEAT_INTERVAL_S=1 for the test worker: the key lives at most 3 s between beats.
    assert 0 < ttl <= 3
    stack.wait_for(
        lambda: _only_heartbeat(redis_server)["updated_at"] > first["updated_at"], 10, "a newer heartbeat"
    )
    score = client.zscore("amulet:workers", first["hostname"])
    assert score is not None and abs(score - time.time()) < 10


def test_health_file_mirrors_the_heartbeat(worker: stack.Proc, run_dir: Path) -> None:
    health = json.loads((run_dir / "worker-health.json").read_text())
    assert health["state"] == "ready"
    assert health["pid"] == worker.popen.pid
