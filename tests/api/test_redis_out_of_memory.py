"""Redis at maxmemory with noeviction: a write is refused, and the gateway answers 503
redis_out_of_memory, stores nothing (no half-created job), and keeps serving reads. Jobs are
never evicted to make room; once memory is available again, jobs are accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import stack
from tests.utils.jobs import assert_error_body, create_json_job

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def oom_stack(run_dir: Path) -> Iterator[tuple[stack.RedisServer, stack.Gateway]]:
    redis = stack.start_redis(run_dir / "oom-redis", extra_args=("--maxmemory-policy", "noeviction"))
    try:
        gw = stack.start_gateway("oom-gateway", redis.url(), run_dir / "oom-gateway.log")
    except BaseException:
        redis.stop()
        raise
    yield redis, gw
    gw.stop()
    redis.stop()


def _set_maxmemory(redis: stack.RedisServer, value: int) -> None:
    # 1 byte: already over the limit, so every write that may use memory is refused.
    redis.client().config_set("maxmemory", value)


def test_out_of_memory_is_503_and_leaves_nothing(oom_stack) -> None:
    redis, gw = oom_stack
    db = redis.client()
    with gw.client(timeout=30) as c:
        earlier = create_json_job(c, "embed", {"texts": ["stored before the limit"]})
        keys_before = sorted(db.keys("*"))
        _set_maxmemory(redis, 1)
        try:
            attempts = [
                c.post("/jobs", json={"task": "embed", "input": {"texts": ["refused"]}}),
                c.post(
                    "/jobs",
                    json={"task": "classify", "input": {"text": "refused"}},
                    headers={"Idempotency-Key": "oom-key"},
                ),
                c.post("/jobs", data={"task": "transcribe"}, files={"file": ("a.wav", b"RIFF" * 100)}),
            ]
            for r in attempts:
                err = assert_error_body(r, 503, "redis_out_of_memory")
                assert "maxmemory" in err["message"]
                assert r.headers["retry-after"]
            # Nothing was written: no job, no input, no idempotency key, no queue message.
            assert sorted(db.keys("*")) == keys_before
            # Reads still work, and the earlier job was not evicted.
            r = c.get(f"/jobs/{earlier['id']}")
            assert r.status_code == 200 and r.json()["status"] == "queued"
            assert c.get("/healthz").status_code == 200
        finally:
            _set_maxmemory(redis, 0)
        # Memory is back: jobs are accepted again, and the idempotency key was never taken.
        r = c.post(
            "/jobs",
            json={"task": "embed", "input": {"texts": ["accepted"]}},
            headers={"Idempotency-Key": "oom-key"},
        )
        assert r.status_code == 202, r.text


def test_cancel_under_out_of_memory_is_503_not_500(oom_stack) -> None:
    redis, gw = oom_stack
    with gw.client(timeout=30) as c:
        job = create_json_job(c, "embed", {"texts": ["cancel under oom"]})
        _set_maxmemory(redis, 1)
        try:
            r = c.post(f"/jobs/{job['id']}/cancel")
            assert_error_body(r, 503, "redis_out_of_memory")
        finally:
            _set_maxmemory(redis, 0)
        assert c.post(f"/jobs/{job['id']}/cancel").json()["status"] == "canceled"


def test_wait_and_tasks_still_answer_under_out_of_memory(oom_stack) -> None:
    redis, gw = oom_stack
    with gw.client(timeout=30) as c:
        job = create_json_job(c, "embed", {"texts": ["wait under oom"]})
        _set_maxmemory(redis, 1)
        try:
            assert c.get(f"/jobs/{job['id']}", params={"wait": 1}).status_code == 200
            assert c.get("/tasks").status_code == 200
        finally:
            _set_maxmemory(redis, 0)
