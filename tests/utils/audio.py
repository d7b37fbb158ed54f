"""Test audio: speech from espeak-ng, conversions with ffmpeg, synthetic tones.

The binaries come from apt (espeak-ng, ffmpeg). They are installed in CI, so a missing one is
a failure naming the package to install, never a silent skip.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from deploy.local import stack

# A pangram the accuracy tests know the words of.
FOX = "the quick brown fox jumps over the lazy dog"


def require_binary(name: str) -> str:
    """Path of an executable, or fail the test saying how to install it."""
    try:
        return stack.require_binary(name)
    except stack.StackError as exc:
        pytest.fail(str(exc), pytrace=False)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def speak(text: str, out: str | Path, voice: str = "en-us", speed_wpm: int = 150) -> Path:
    """Synthesize ``text`` with espeak-ng to a mono WAV (espeak's native 22050 Hz)."""
    out = Path(out)
    _run([require_binary("espeak-ng"), "-v", voice, "-s", str(speed_wpm), "-w", str(out), text])
    return out


OPUS_RATES = {8000, 12000, 16000, 24000, 48000}


def convert(
    src: str | Path,
    out: str | Path,
    *,
    rate: int | None = None,
    channels: int | None = None,
    codec_args: list[str] | None = None,
) -> Path:
    """Re-encode ``src`` with ffmpeg; the container/codec follows ``out``'s suffix.

    ``.mp3`` (libmp3lame), ``.ogg`` (Opus, or Vorbis at rates Opus lacks), ``.m4a`` (AAC),
    ``.wav`` (16-bit PCM), ``.flac``.
    """
    out = Path(out)
    defaults = {
        ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
        ".ogg": ["-c:a", "libopus", "-b:a", "48k"],
        ".opus": ["-c:a", "libopus", "-b:a", "48k"],
        ".m4a": ["-c:a", "aac", "-b:a", "64k"],
        ".wav": ["-c:a", "pcm_s16le"],
        ".flac": ["-c:a", "flac"],
    }
    cmd = [require_binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    if rate:
        cmd += ["-ar", str(rate)]
    if channels:
        cmd += ["-ac", str(channels)]
    if codec_args is None:
        codec_args = defaults.get(out.suffix, [])
        if out.suffix == ".ogg" and rate and rate not in OPUS_RATES:
            # Opus only encodes at these rates; Vorbis keeps the requested one (e.g. 44.1 kHz).
            codec_args = ["-c:a", "libvorbis", "-q:a", "4"]
    cmd += codec_args
    cmd.append(str(out))
    _run(cmd)
    return out


def write_wav(samples: np.ndarray, out: str | Path, rate: int = 16000) -> Path:
    """Write float samples in [-1, 1] (shape (n,) or (n, channels)) as 16-bit PCM WAV."""
    out = Path(out)
    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out


def tone(
    seconds: float,
    out: str | Path,
    freq: float = 440.0,
    rate: int = 16000,
    amplitude: float = 0.3,
    channels: int = 1,
) -> Path:
    """A sine tone as 16-bit WAV (with a slow warble so it is not pure silence-like DC)."""
    t = np.arange(int(seconds * rate)) / rate
    wave_ = amplitude * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    if channels > 1:
        wave_ = np.repeat(wave_[:, None], channels, axis=1)
    return write_wav(wave_, out, rate)


def concat_to_length(src: str | Path, seconds: float, out: str | Path, rate: int = 16000) -> Path:
    """Loop ``src`` (any format ffmpeg reads) to ``seconds`` long, as mono WAV at ``rate``."""
    out = Path(out)
    _run(
        [
            require_binary("ffmpeg"),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-stream_loop",
            "-1",
            "-i",
            str(src),
            "-t",
            str(seconds),
            "-ar",
            str(rate),
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            str(out),
        ]
    )
    return out


def probe(path: str | Path) -> dict:
    """Sample rate, channels and duration as ffprobe sees them."""
    import json

    ffprobe = shutil.which("ffprobe") or require_binary("ffmpeg").replace("ffmpeg", "ffprobe")
    proc = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "stream=sample_rate,channels,codec_name:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info = json.loads(proc.stdout)
    stream = info["streams"][0]
    return {
        "codec": stream.get("codec_name"),
        "rate": int(stream["sample_rate"]),
        "channels": int(stream["channels"]),
        "duration": float(info["format"]["duration"]),
    }
