"""The compose stack (compose.yaml, GPU reservation included) answers a client over its published port:
text and audio jobs run to `succeeded` on the models in the worker, the synthesized WAV downloads,
and errors have the documented codes. The worker runs on CPU (no GPU in CI) and says so in /tasks."""

from __future__ import annotations

import io
import math
import re
import uuid
import wave
from pathlib import Path

import httpx
import pytest

from tests.utils.audio import FOX, speak
from tests.utils.jobs import assert_error_body, assert_succeeded, create_audio_job, run_json_job, wait_job

pytestmark = pytest.mark.timeout(300)

TASKS = {"transcribe", "synthesize", "generate", "classify", "embed"}


def test_ready_and_every_task_served_on_cpu_from_the_mounted_models(stack: httpx.Client) -> None:
    assert stack.get("/healthz").json() == {"status": "ok"}
    ready = stack.get("/readyz")
    assert ready.status_code == 200, ready.text
    tasks = {t["name"]: t for t in stack.get("/tasks").json()["tasks"]}
    assert set(tasks) == TASKS
    for name, task in tasks.items():
        assert task["enabled"] is True, task
        (model,) = task["models"]
        # No GPU behind the reservation: AMULET_DEVICE=auto falls back to CPU with fp32.
        assert (model["model"], model["device"], model["dtype"]) == (f"/models/{name}", "cpu", "float32")


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_text_job_embed_with_the_real_minilm(stack: httpx.Client) -> None:
    texts = ["A cat sits on the mat.", "A kitten is lying on a rug.", "Stock markets fell sharply today."]
    job = run_json_job(stack, "embed", {"texts": texts})
    result = assert_succeeded(job)
    assert result["dimension"] == 384
    cat, kitten, stocks = result["embeddings"]
    # all-MiniLM-L6-v2 puts the two sentences about a cat far closer together than the third.
    assert _cosine(cat, kitten) > _cosine(cat, stocks) + 0.2, result
    assert job["timings"]["run_s"] >= 0


def test_text_job_classify(stack: httpx.Client) -> None:
    result = assert_succeeded(run_json_job(stack, "classify", {"text": "I love this service!"}))
    # A tiny random classifier: the labels are real, the choice is not.
    assert result["label"] in {"NEGATIVE", "POSITIVE"}
    assert {s["label"] for s in result["scores"]} == {"NEGATIVE", "POSITIVE"}


def test_audio_job_transcribes_espeak_speech(stack: httpx.Client, tmp_path: Path) -> None:
    wav = speak(FOX, tmp_path / "fox.wav")
    job = create_audio_job(stack, wav, params={"language": "en"}, content_type="audio/wav")
    assert job["status"] == "queued"
    done = wait_job(stack, job["id"])
    result = assert_succeeded(done)
    # The real Whisper tiny.en hears most of the pangram espeak-ng spoke.
    heard = set(re.findall(r"[a-z']+", result["text"].lower()))
    words = FOX.split()
    assert sum(w in heard for w in words) / len(words) >= 0.6, result["text"]
    assert result["segments"], result


def test_synthesize_then_download_the_wav(stack: httpx.Client) -> None:
    job = run_json_job(stack, "synthesize", {"text": "Hello from the compose stack."})
    result = assert_succeeded(job)
    assert result["url"] == f"/jobs/{job['id']}/result"
    r = stack.get(result["url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("audio/wav")
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getframerate() == result["sampling_rate"] == 16000
        assert w.getnchannels() == 1
        assert w.getnframes() > 0


def test_unknown_job_is_404(stack: httpx.Client) -> None:
    assert_error_body(stack.get(f"/jobs/{uuid.uuid4().hex}"), 404, "job_not_found")


def test_unknown_task_is_422(stack: httpx.Client) -> None:
    err = assert_error_body(
        stack.post("/jobs", json={"task": "summarize", "input": {"text": "a"}}), 422, "unknown_task"
    )
    assert set(err["details"]["available"]) == TASKS


def test_body_over_the_upload_limit_is_413(stack: httpx.Client, max_upload_bytes: int) -> None:
    body = b'{"task": "embed", "input": {"texts": ["' + b"x" * (max_upload_bytes + 1000) + b'"]}}'
    r = stack.post("/jobs", content=body, headers={"content-type": "application/json"})
    err = assert_error_body(r, 413, "payload_too_large")
    assert err["details"] == {"max_bytes": max_upload_bytes}


def test_wrong_content_type_is_415(stack: httpx.Client) -> None:
    r = stack.post("/jobs", content=b"hello", headers={"content-type": "text/plain"})
    assert_error_body(r, 415, "unsupported_media_type")
    assert_error_body(
        stack.post("/jobs", json={"task": "transcribe", "input": {}}), 415, "unsupported_media_type"
    )
