"""Idempotency-Key on POST /jobs: the same key and body give the same job (200, replayed), the
same key with another body is refused, and concurrent identical requests create one job.

Runs on the idle gateway (no worker): jobs stay queued, so the queue itself shows how many
messages were published for a job.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from deploy.local import stack
from tests.utils.jobs import assert_error_body

pytestmark = pytest.mark.timeout(60)

BODY = {"task": "embed", "input": {"texts": ["idempotent"]}}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _messages_for(redis_server: stack.RedisServer, job_id: str) -> int:
    """How many Celery messages on the idle db's text queue carry this job id."""
    messages = redis_server.client(1).lrange("text", 0, -1)
    return sum(1 for m in messages if json.loads(m)["headers"]["id"] == job_id)


def test_same_key_and_body_replays_the_same_job(idle_client: httpx.Client, redis_server) -> None:
    key = _key()
    first = idle_client.post("/jobs", json=BODY, headers=key)
    assert first.status_code == 202, first.text
    assert "idempotency-replayed" not in first.headers
    again = idle_client.post("/jobs", json=BODY, headers=key)
    assert again.status_code == 200, again.text
    assert again.headers["idempotency-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == f"/jobs/{first.json()['id']}"
    assert _messages_for(redis_server, first.json()["id"]) == 1


def test_body_is_compared_in_canonical_form(idle_client: httpx.Client) -> None:
    # Key order, whitespace and an explicit empty params object do not make another request.
    key = _key()
    first = idle_client.post("/jobs", json=BODY, headers=key)
    reordered = '{"input": {"texts": ["idempotent"]},   "params": {}, "task": "embed"}'
    again = idle_client.post("/jobs", content=reordered, headers={**key, "Content-Type": "application/json"})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "other",
    [
        {"task": "embed", "input": {"texts": ["something else"]}},
        {"task": "embed", "input": {"texts": ["idempotent"]}, "params": {"normalize": False}},
        {"task": "classify", "input": {"text": "idempotent"}},
    ],
)
def test_same_key_with_another_body_is_refused(idle_client: httpx.Client, other: dict) -> None:
    key = _key()
    first = idle_client.post("/jobs", json=BODY, headers=key)
    r = idle_client.post("/jobs", json=other, headers=key)
    err = assert_error_body(r, 422, "idempotency_key_reused")
    assert err["details"] == {"job_id": first.json()["id"]}
    assert "new key" in err["message"]


def test_uploads_compare_the_file_content(idle_client: httpx.Client) -> None:
    key = _key()

    def upload(content: bytes) -> httpx.Response:
        return idle_client.post(
            "/jobs", data={"task": "transcribe"}, files={"file": ("a.wav", content)}, headers=key
        )

    first = upload(b"RIFF-not-really-audio")
    assert first.status_code == 202, first.text
    same = upload(b"RIFF-not-really-audio")
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    assert_error_body(upload(b"RIFF-other-bytes"), 422, "idempotency_key_reused")


def test_concurrent_identical_requests_create_one_job(idle_gateway: stack.Gateway, redis_server) -> None:
    key = _key()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=idle_gateway.base_url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/jobs", json=BODY, headers=key) for _ in range(30)))

    responses = asyncio.run(burst())
    assert sorted({r.status_code for r in responses}) == [200, 202], [r.text for r in responses]
    assert [r.status_code for r in responses].count(202) == 1
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert _messages_for(redis_server, ids.pop()) == 1


@pytest.mark.parametrize("bad", [b"", b"x" * 256, b"has space", "naïve".encode()])
def test_malformed_keys_are_refused(idle_client: httpx.Client, bad: bytes) -> None:
    r = idle_client.post("/jobs", json=BODY, headers={"Idempotency-Key": bad})
    err = assert_error_body(r, 422, "invalid_request")
    assert "Idempotency-Key" in err["message"]


def test_without_a_key_every_request_is_a_new_job(idle_client: httpx.Client) -> None:
    ids = {idle_client.post("/jobs", json=BODY).json()["id"] for _ in range(3)}
    assert len(ids) == 3
