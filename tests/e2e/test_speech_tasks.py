"""Speech tasks end to end through the real worker: synthesize (tiny VITS) and transcribe (tiny
random Whisper). Random weights give random words, so these check structure, not text."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.utils.audio import concat_to_length, convert, tone
from tests.utils.jobs import assert_succeeded, create_audio_job, run_audio_job, run_json_job, wait_job

pytestmark = pytest.mark.timeout(300)


def _assert_transcript(result: dict) -> None:
    assert isinstance(result["text"], str)
    assert result["language"] is None or isinstance(result["language"], str)
    assert isinstance(result["duration_s"], float | int) and result["duration_s"] > 0
    segments = result["segments"]
    assert isinstance(segments, list)
    for seg in segments:
        assert set(seg) >= {"start", "end", "text"}
        assert isinstance(seg["text"], str)
        assert isinstance(seg["start"], float | int) and seg["start"] >= 0
        assert seg["end"] is None or seg["end"] >= seg["start"], seg
    starts = [seg["start"] for seg in segments]
    assert starts == sorted(starts), f"segments out of order: {segments}"


def test_synthesize_returns_a_wav_at_16k_from_the_result_url(client: httpx.Client) -> None:
    job = run_json_job(client, "synthesize", {"text": "Hello from Amulet."})
    result = assert_succeeded(job)
    assert result["content_type"] == "audio/wav"
    assert result["sampling_rate"] == 16000
    assert result["duration_s"] > 0
    assert result["url"] == f"/jobs/{job['id']}/result"
    assert job["links"]["result"] == result["url"]

    r = client.get(result["url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("audio/wav")
    samples, rate = sf.read(io.BytesIO(r.content))
    assert rate == 16000
    assert samples.ndim == 1 and samples.shape[0] > 0
    assert np.isfinite(samples).all()
    assert samples.shape[0] / rate == pytest.approx(result["duration_s"], abs=0.05)


def test_transcribe_wav_upload_gives_text_and_ordered_segments(client: httpx.Client, fox_wav: Path) -> None:
    job = run_audio_job(client, fox_wav, {"language": "en", "task": "transcribe"})
    result = assert_succeeded(job)
    _assert_transcript(result)
    assert result["segments"], "return_timestamps defaults to true: expected segments"
    assert result["duration_s"] == pytest.approx(3.44, abs=0.1)


def test_transcribe_without_language_detects_one(client: httpx.Client, fox_wav: Path) -> None:
    result = assert_succeeded(run_audio_job(client, fox_wav))
    _assert_transcript(result)


def test_transcribe_without_timestamps_still_succeeds(client: httpx.Client, fox_wav: Path) -> None:
    result = assert_succeeded(run_audio_job(client, fox_wav, {"language": "en", "return_timestamps": False}))
    _assert_transcript(result)


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".m4a"])
def test_transcribe_decodes_compressed_uploads(
    client: httpx.Client, fox_wav: Path, audio_dir: Path, suffix: str
) -> None:
    path = convert(fox_wav, audio_dir / f"e2e-fox{suffix}")
    result = assert_succeeded(run_audio_job(client, path, {"language": "en"}))
    _assert_transcript(result)
    assert result["duration_s"] == pytest.approx(3.44, abs=0.2)


def test_transcribe_stereo_44k_upload(client: httpx.Client, fox_wav: Path, audio_dir: Path) -> None:
    path = convert(fox_wav, audio_dir / "e2e-fox-stereo-44k.wav", rate=44100, channels=2)
    result = assert_succeeded(run_audio_job(client, path, {"language": "en"}))
    _assert_transcript(result)


def test_long_audio_over_30_s_is_chunked_and_succeeds(
    client: httpx.Client, fox_wav: Path, audio_dir: Path
) -> None:
    # 65 s: three 30 s windows. The sentence looped, as mp3 to stay under the 2 MB upload limit.
    speech = concat_to_length(fox_wav, 65, audio_dir / "long-65s.wav")
    path = convert(speech, audio_dir / "long-65s.mp3")
    assert path.stat().st_size < 2_000_000
    result = assert_succeeded(run_audio_job(client, path, {"language": "en"}, timeout=240))
    _assert_transcript(result)
    assert result["duration_s"] == pytest.approx(65, abs=0.5)
    assert len(result["segments"]) >= 2, result["segments"]
    # Chunks are stitched back on one timeline: something past the first 30 s window.
    assert max(seg["start"] for seg in result["segments"]) > 30, result["segments"]


def test_random_bytes_fail_with_invalid_audio_and_the_worker_keeps_serving(
    client: httpx.Client, audio_dir: Path, tone_wav: Path
) -> None:
    garbage = audio_dir / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(1).bytes(50_000))
    job = wait_job(client, create_audio_job(client, garbage)["id"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "invalid_audio", job
    assert job["error"]["message"]
    assert job["result"] is None
    assert job["finished_at"] is not None

    # The same worker runs the next job.
    result = assert_succeeded(run_audio_job(client, tone_wav, {"language": "en"}))
    _assert_transcript(result)


def test_silence_only_upload_succeeds(client: httpx.Client, audio_dir: Path) -> None:
    path = tone(1.0, audio_dir / "silence.wav", amplitude=0.0)
    result = assert_succeeded(run_audio_job(client, path, {"language": "en"}))
    _assert_transcript(result)
