"""Bad input ends as a failed job with a clear code, never a crashed worker or a 5xx:

- truncated audio (WAV and MP3 cut inside their headers) -> failed, invalid_audio;
- audio cut in the middle of its data -> decoded as far as it goes, or invalid_audio;
- a generate prompt longer than the model's context -> failed, invalid_input (never truncated);
- a classify text longer than the model's window -> truncated, and it succeeds.
After each, the same worker serves the next job. Random bytes: test_speech_tasks.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.utils.audio import convert
from tests.utils.jobs import assert_succeeded, create_audio_job, run_json_job, wait_job

pytestmark = pytest.mark.timeout(300)


def _worker_still_serves(client: httpx.Client) -> None:
    assert_succeeded(run_json_job(client, "classify", {"text": "still here"}))


def _cut(src: Path, out: Path, keep: int) -> Path:
    out.write_bytes(src.read_bytes()[:keep])
    return out


@pytest.fixture(scope="module")
def fox_mp3(fox_wav: Path, audio_dir: Path) -> Path:
    return convert(fox_wav, audio_dir / "fox-for-truncation.mp3")


@pytest.mark.parametrize(("source", "keep"), [("wav", 20), ("wav", 44), ("mp3", 30)])
def test_audio_truncated_in_its_header_fails_with_invalid_audio(
    client: httpx.Client, fox_wav: Path, fox_mp3: Path, audio_dir: Path, source: str, keep: int
) -> None:
    src = fox_wav if source == "wav" else fox_mp3
    cut = _cut(src, audio_dir / f"cut-{keep}.{source}", keep)
    job = wait_job(client, create_audio_job(client, cut)["id"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "invalid_audio", job
    _worker_still_serves(client)


@pytest.mark.parametrize("source", ["wav", "mp3"])
def test_audio_cut_in_its_data_never_crashes_the_worker(
    client: httpx.Client, fox_wav: Path, fox_mp3: Path, audio_dir: Path, source: str
) -> None:
    src = fox_wav if source == "wav" else fox_mp3
    cut = _cut(src, audio_dir / f"half.{source}", len(src.read_bytes()) // 2)
    job = wait_job(client, create_audio_job(client, cut)["id"])
    ok = job["status"] == "succeeded" or (
        job["status"] == "failed" and job["error"]["code"] == "invalid_audio"
    )
    assert ok, job
    _worker_still_serves(client)


def test_generate_prompt_over_the_context_is_refused_not_truncated(client: httpx.Client) -> None:
    # The tiny test generator has a 2048-token context; this prompt is far longer.
    job = run_json_job(client, "generate", {"prompt": "queues and workers " * 3000}, {"max_new_tokens": 4})
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "invalid_input", job
    assert "context" in job["error"]["message"]
    _worker_still_serves(client)


def test_classify_text_over_the_window_is_truncated_and_succeeds(client: httpx.Client) -> None:
    # The tiny classifier reads 512 positions; this text is many thousands of tokens.
    result = assert_succeeded(run_json_job(client, "classify", {"text": "great service " * 5000}))
    assert result["label"] and 0 <= result["score"] <= 1
