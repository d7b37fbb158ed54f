"""What a job leaves in Redis (docs/api.md, "Internal: Redis layout"): the upload is dropped when the job
ends, finished records and binary results expire, and Celery messages carry only the job id."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import redis

from deploy.local import stack
from tests.utils.jobs import assert_succeeded, create_audio_job, create_json_job, run_json_job, wait_job

pytestmark = pytest.mark.timeout(120)

RESULT_TTL_S = 86_400  # AMULET_RESULT_TTL_S default


def test_uploaded_audio_is_deleted_when_the_job_ends(
    client: httpx.Client, redis_server: stack.RedisServer, tone_wav: Path
) -> None:
    job = wait_job(client, create_audio_job(client, tone_wav, {"language": "en"})["id"])
    assert_succeeded(job)
    r = redis_server.client()
    assert not r.exists(f"amulet:input:{job['id']}")
    assert 0 < r.ttl(f"amulet:job:{job['id']}") <= RESULT_TTL_S


def test_synthesized_wav_is_stored_with_the_result_ttl(
    client: httpx.Client, redis_server: stack.RedisServer
) -> None:
    job = run_json_job(client, "synthesize", {"text": "stored"})
    assert_succeeded(job)
    r = redis_server.client()
    ttl = r.ttl(f"amulet:result:{job['id']}")
    assert 0 < ttl <= RESULT_TTL_S
    assert r.hget(f"amulet:job:{job['id']}", "result_content_type") == "audio/wav"


def test_queued_upload_waits_in_redis_with_a_ttl(
    idle_client: httpx.Client, redis_server: stack.RedisServer, tone_wav: Path
) -> None:
    job = create_audio_job(idle_client, tone_wav)
    r = redis.Redis.from_url(redis_server.url(1))
    assert r.get(f"amulet:input:{job['id']}") == tone_wav.read_bytes()
    assert r.ttl(f"amulet:input:{job['id']}") > 0


def test_celery_message_carries_only_the_job_id(
    idle_client: httpx.Client, redis_server: stack.RedisServer
) -> None:
    job = create_json_job(idle_client, "classify", {"text": "a secret input that stays in the job record"})
    r = redis_server.client(1)
    messages = [json.loads(m) for m in r.lrange("text", 0, -1)]
    (message,) = [m for m in messages if m["headers"]["id"] == job["id"]]
    assert message["headers"]["task"] == "amulet.classify"
    assert message["properties"]["delivery_info"]["routing_key"] == "text"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [job["id"]] and kwargs == {}
    assert "secret" not in json.dumps(message)
