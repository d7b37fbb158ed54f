"""Every error path of docs/api.md, with the one error body {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.utils.jobs import assert_error_body, assert_succeeded, create_json_job, run_json_job

pytestmark = pytest.mark.timeout(120)

ALL_TASKS = {"transcribe", "synthesize", "generate", "classify", "embed"}
LIMIT = 2_000_000  # AMULET_MAX_UPLOAD_BYTES of the test gateways


# -- 404 -------------------------------------------------------------------------------------
def test_unknown_job_id_is_404_job_not_found(client: httpx.Client) -> None:
    job_id = uuid.uuid4().hex
    assert_error_body(client.get(f"/jobs/{job_id}"), 404, "job_not_found")
    assert_error_body(client.get(f"/jobs/{job_id}", params={"wait": 1}), 404, "job_not_found")
    assert_error_body(client.get(f"/jobs/{job_id}/result"), 404, "job_not_found")


def test_result_of_a_json_task_is_404_no_binary_result(client: httpx.Client) -> None:
    job = run_json_job(client, "embed", {"texts": ["x"]})
    assert_succeeded(job)
    assert job["links"]["result"] is None
    assert_error_body(client.get(f"/jobs/{job['id']}/result"), 404, "no_binary_result")


def test_unknown_route_uses_the_error_body(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"code", "message", "details"}


# -- 409 -------------------------------------------------------------------------------------
def test_result_before_success_is_409_result_not_ready(idle_client: httpx.Client) -> None:
    # No worker listens behind the idle gateway: the job stays queued.
    job = create_json_job(idle_client, "synthesize", {"text": "never run"})
    err = assert_error_body(idle_client.get(f"/jobs/{job['id']}/result"), 409, "result_not_ready")
    assert err["details"] == {"status": "queued"}


# -- 415 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_body_that_is_neither_json_nor_multipart_is_415(
    client: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/jobs", content=b'{"task": "embed", "input": {"texts": ["a"]}}', headers=headers)
    assert_error_body(r, 415, "unsupported_media_type")


def test_transcribe_sent_as_json_is_415(client: httpx.Client) -> None:
    r = client.post("/jobs", json={"task": "transcribe", "input": {}})
    err = assert_error_body(r, 415, "unsupported_media_type")
    assert "multipart" in err["message"]


def test_text_task_sent_as_multipart_is_415(client: httpx.Client, tone_wav: Path) -> None:
    r = client.post("/jobs", data={"task": "embed"}, files={"file": ("a.wav", tone_wav.read_bytes())})
    err = assert_error_body(r, 415, "unsupported_media_type")
    assert "json" in err["message"].lower()


# -- 422 -------------------------------------------------------------------------------------
def test_unknown_task_is_422_listing_the_available_tasks(client: httpx.Client) -> None:
    r = client.post("/jobs", json={"task": "summarize", "input": {"text": "a"}})
    err = assert_error_body(r, 422, "unknown_task")
    assert set(err["details"]["available"]) == ALL_TASKS


def test_unknown_task_in_multipart_is_422_unknown_task(client: httpx.Client, tone_wav: Path) -> None:
    r = client.post("/jobs", data={"task": "translate"}, files={"file": ("a.wav", tone_wav.read_bytes())})
    err = assert_error_body(r, 422, "unknown_task")
    assert set(err["details"]["available"]) == ALL_TASKS


def _locs(err: dict) -> list[list]:
    assert isinstance(err["details"], list) and err["details"], err
    for item in err["details"]:
        assert {"loc", "msg"} <= set(item), item
    return [item["loc"] for item in err["details"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": {"texts": ["a"]}}, "task"),
        ({"task": "embed"}, "input"),
        ({"task": "embed", "input": {}}, "texts"),
        ({"task": "embed", "input": {"texts": []}}, "texts"),
        ({"task": "embed", "input": {"texts": "not a list"}}, "texts"),
        ({"task": "classify", "input": {"text": ""}}, "text"),
        ({"task": "synthesize", "input": {"text": "x" * 5001}}, "text"),
        ({"task": "generate", "input": {"prompt": "a"}, "params": {"max_new_tokens": 0}}, "max_new_tokens"),
        ({"task": "generate", "input": {"prompt": "a"}, "params": {"temperature": 3}}, "temperature"),
        ({"task": "generate", "input": {"messages": [{"role": "robot", "content": "hi"}]}}, "role"),
        ({"task": "classify", "input": {"text": "a"}, "params": {"top_k": 0}}, "top_k"),
    ],
    ids=[
        "no-task",
        "no-input",
        "no-texts",
        "empty-texts",
        "texts-type",
        "empty-text",
        "text-too-long",
        "max-new-tokens-0",
        "temperature-3",
        "bad-role",
        "top-k-0",
    ],
)
def test_missing_or_invalid_fields_are_422_invalid_request_naming_the_field(
    client: httpx.Client, body: dict, field: str
) -> None:
    err = assert_error_body(client.post("/jobs", json=body), 422, "invalid_request")
    assert any(field in [str(part) for part in loc] for loc in _locs(err)), err
    # The message alone tells a person what to fix.
    assert field in err["message"], err


@pytest.mark.parametrize(
    "body",
    [
        {"task": "embed", "input": {"texts": ["a"]}, "params": {"normalise": True}},
        {"task": "embed", "input": {"texts": ["a"], "extra": 1}},
        {"task": "embed", "input": {"texts": ["a"]}, "priority": 5},
    ],
    ids=["typo-in-params", "extra-input-field", "extra-top-level-field"],
)
def test_unknown_fields_are_refused(client: httpx.Client, body: dict) -> None:
    err = assert_error_body(client.post("/jobs", json=body), 422, "invalid_request")
    assert any(
        item.get("type") == "extra_forbidden" or "extra" in item["msg"].lower() for item in err["details"]
    ), err


def test_generate_needs_exactly_one_of_prompt_or_messages(client: httpx.Client) -> None:
    both = {"task": "generate", "input": {"prompt": "a", "messages": [{"role": "user", "content": "b"}]}}
    neither = {"task": "generate", "input": {}}
    for body in (both, neither):
        err = assert_error_body(client.post("/jobs", json=body), 422, "invalid_request")
        assert "prompt" in json.dumps(err["details"])


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"'])
def test_malformed_json_is_422_invalid_request(client: httpx.Client, raw: bytes) -> None:
    r = client.post("/jobs", content=raw, headers={"content-type": "application/json"})
    assert_error_body(r, 422, "invalid_request")


def test_multipart_unknown_field_is_422(client: httpx.Client, tone_wav: Path) -> None:
    r = client.post(
        "/jobs",
        data={"task": "transcribe", "priority": "high"},
        files={"file": ("a.wav", tone_wav.read_bytes(), "audio/wav")},
    )
    err = assert_error_body(r, 422, "invalid_request")
    assert ["body", "priority"] in _locs(err)


def test_multipart_with_only_the_task_field_is_422_missing_file(client: httpx.Client) -> None:
    # httpx sends multipart only with files; build the body by hand.
    boundary = "amuletboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\ntranscribe\r\n--{boundary}--\r\n'
    ).encode()
    r = client.post(
        "/jobs", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    err = assert_error_body(r, 422, "invalid_request")
    assert ["body", "file"] in _locs(err)


def test_multipart_empty_file_is_422(client: httpx.Client) -> None:
    r = client.post("/jobs", data={"task": "transcribe"}, files={"file": ("empty.wav", b"")})
    err = assert_error_body(r, 422, "invalid_request")
    assert ["body", "file"] in _locs(err)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("{oops", "params"),
        ('{"task": "summarize"}', "task"),
        ('{"langauge": "en"}', "langauge"),
        ('{"language": "e"}', "language"),
    ],
    ids=["not-json", "bad-task", "typo", "language-too-short"],
)
def test_multipart_invalid_params_are_422(
    client: httpx.Client, tone_wav: Path, params: str, field: str
) -> None:
    r = client.post(
        "/jobs",
        data={"task": "transcribe", "params": params},
        files={"file": ("a.wav", tone_wav.read_bytes(), "audio/wav")},
    )
    err = assert_error_body(r, 422, "invalid_request")
    assert any(field in [str(p) for p in loc] for loc in _locs(err)), err


def test_wait_must_be_a_non_negative_number(client: httpx.Client) -> None:
    job = create_json_job(client, "embed", {"texts": ["a"]})
    for bad in ("-1", "soon", "nan"):
        assert_error_body(client.get(f"/jobs/{job['id']}", params={"wait": bad}), 422, "invalid_request")


# -- 413 -------------------------------------------------------------------------------------
def _big_json(size: int) -> bytes:
    return json.dumps({"task": "embed", "input": {"texts": ["x" * size]}}).encode()


def test_json_over_the_limit_with_content_length_is_413(client: httpx.Client) -> None:
    body = _big_json(LIMIT + 1000)
    r = client.post("/jobs", content=body, headers={"content-type": "application/json"})
    err = assert_error_body(r, 413, "payload_too_large")
    assert err["details"] == {"max_bytes": LIMIT}


def test_json_over_the_limit_sent_chunked_is_413(client: httpx.Client) -> None:
    body = _big_json(LIMIT + 1000)

    def chunks():  # no Content-Length: httpx sends Transfer-Encoding: chunked
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    r = client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert_error_body(r, 413, "payload_too_large")


def test_audio_upload_over_the_limit_is_413_with_content_length(client: httpx.Client) -> None:
    r = client.post(
        "/jobs", data={"task": "transcribe"}, files={"file": ("big.wav", b"\0" * (LIMIT + 10), "audio/wav")}
    )
    assert_error_body(r, 413, "payload_too_large")


def test_audio_upload_over_the_limit_sent_chunked_is_413(client: httpx.Client) -> None:
    boundary = "amuletboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\ntranscribe\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def chunks():
        yield head
        for _ in range((LIMIT // (64 * 1024)) + 4):
            yield b"\0" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post(
        "/jobs", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_error_body(r, 413, "payload_too_large")


def test_upload_just_under_the_limit_is_accepted(client: httpx.Client, tone_wav: Path) -> None:
    # The limit applies to the body, not to something smaller: a normal upload passes.
    r = client.post(
        "/jobs",
        data={"task": "transcribe", "params": '{"language": "en"}'},
        files={"file": ("tone.wav", tone_wav.read_bytes(), "audio/wav")},
    )
    assert r.status_code == 202, r.text


# -- 503 -------------------------------------------------------------------------------------
def test_gateway_without_redis_answers_503_redis_unavailable(dead_redis_client: httpx.Client) -> None:
    r = dead_redis_client.post("/jobs", json={"task": "embed", "input": {"texts": ["a"]}})
    assert_error_body(r, 503, "redis_unavailable")
    assert_error_body(dead_redis_client.get(f"/jobs/{uuid.uuid4().hex}"), 503, "redis_unavailable")
