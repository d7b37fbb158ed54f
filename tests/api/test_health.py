"""/healthz and /readyz: liveness always, readiness only with Redis and a ready worker per required queue."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)


def test_healthz_is_200_while_the_process_is_up(
    client: httpx.Client, dead_redis_client: httpx.Client
) -> None:
    for c in (client, dead_redis_client):
        r = c.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


def test_readyz_is_200_with_the_worker_up(client: httpx.Client) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["redis"] == "ok"
    assert body["problems"] == []
    assert body["queues"]["speech"]["ready_workers"] >= 1
    assert body["queues"]["text"]["ready_workers"] >= 1


def test_readyz_is_503_when_no_worker_serves_a_required_queue(idle_client: httpx.Client) -> None:
    r = idle_client.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["redis"] == "ok"
    assert body["queues"] == {"speech": {"ready_workers": 0}, "text": {"ready_workers": 0}}
    assert len(body["problems"]) == 2
    assert any("speech" in p for p in body["problems"]) and any("text" in p for p in body["problems"])


def test_readyz_is_503_when_redis_is_unreachable(dead_redis_client: httpx.Client) -> None:
    r = dead_redis_client.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["redis"] == "unreachable"
    assert any("redis" in p.lower() for p in body["problems"])


def test_readyz_only_requires_the_configured_queues(speech_client: httpx.Client) -> None:
    # The speech stack's gateway requires only "speech", which its speech-only worker serves.
    r = speech_client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["queues"] == {"speech": {"ready_workers": 1}}
