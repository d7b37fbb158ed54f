"""The worker's heartbeat in Redis and its health file are shared/worker_heartbeat.py's
WorkerHeartbeat, the model the gateway reads them with (its /tasks and /readyz are built from
these), and docs/api.md shows every field of it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from deploy.local import stack
from shared.worker_heartbeat import TaskReport, WorkerHeartbeat

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def _only_heartbeat(redis_server: stack.RedisServer) -> dict:
    beats = stack.worker_heartbeats(redis_server.client())
    assert len(beats) == 1, beats
    return beats[0]


def test_heartbeat_is_the_shared_model_and_reports_every_model(
    worker: stack.Proc, redis_server: stack.RedisServer, tiny_model_dirs: dict[str, Path]
) -> None:
    hb = _only_heartbeat(redis_server)
    # Exactly the model's fields (none missing, none the gateway would not know), and valid.
    assert set(hb) == set(WorkerHeartbeat.model_fields), set(hb) ^ set(WorkerHeartbeat.model_fields)
    WorkerHeartbeat.model_validate(hb)
    for report in hb["tasks"].values():
        assert set(report) == set(TaskReport.model_fields)
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


def test_docs_show_every_field_of_the_heartbeat() -> None:
    docs = (ROOT / "docs" / "api.md").read_text()
    example = re.search(r"```json\n(\{\"hostname\".*?)\n```", docs, re.S)
    assert example is not None, "docs/api.md has no heartbeat example"
    shown = json.loads(example.group(1))
    assert set(shown) == set(WorkerHeartbeat.model_fields)
    WorkerHeartbeat.model_validate(shown)
