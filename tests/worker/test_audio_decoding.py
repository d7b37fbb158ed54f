"""Uploaded audio -> mono float32 at the model's rate, from any container; garbage -> InvalidAudio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.audio import convert, tone
from worker.audio import decode_audio, duration_s
from worker.errors import InvalidAudio


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [
        (".wav", 16000, 1),
        (".wav", 44100, 2),
        (".mp3", 22050, 1),
        (".ogg", 48000, 2),
        (".ogg", 44100, 1),
        (".m4a", 44100, 2),
        (".flac", 22050, 1),
    ],
)
def test_decodes_to_mono_16k_with_the_right_duration(
    audio_dir: Path, suffix: str, rate: int, channels: int
) -> None:
    src = tone(2.0, audio_dir / f"decode-src-{rate}-{channels}.wav", rate=rate, channels=channels)
    path = src if suffix == ".wav" else convert(src, audio_dir / f"decode-{rate}-{channels}{suffix}")
    samples = decode_audio(path.read_bytes(), 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Lossy codecs pad a little at the edges.
    assert duration_s(samples, 16000) == pytest.approx(2.0, abs=0.1)
    assert 0.05 < float(np.abs(samples).max()) <= 1.0


def test_random_bytes_are_invalid_audio() -> None:
    garbage = np.random.default_rng(0).bytes(20_000)
    with pytest.raises(InvalidAudio):
        decode_audio(garbage, 16000)


def test_empty_upload_is_invalid_audio() -> None:
    with pytest.raises(InvalidAudio):
        decode_audio(b"", 16000)
