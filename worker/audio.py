"""Decode uploaded audio into the mono float32 samples a speech model expects.

libsndfile (soundfile) reads WAV/FLAC/OGG/MP3 in-process and fast; everything else
(m4a/AAC, webm/opus, video containers, ...) goes through an ffmpeg subprocess.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import soxr

from worker.errors import InvalidAudio

# The job's error when a format needs ffmpeg and the worker has none (README quotes it).
FFMPEG_MISSING = (
    "the audio format is not supported (libsndfile cannot read it and ffmpeg is not installed in the "
    "worker); upload WAV, FLAC, OGG or MP3"
)
# Far above any real decode; only there so a pathological file cannot hold the worker forever.
FFMPEG_TIMEOUT_S = 600


def decode_audio(data: bytes, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at ``sampling_rate``; InvalidAudio when the bytes are not usable audio."""
    if not data:
        raise InvalidAudio("the uploaded audio file is empty")
    try:
        samples = _decode_soundfile(data, sampling_rate)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        samples = _decode_ffmpeg(data, sampling_rate)
    if samples.size == 0:
        raise InvalidAudio("the uploaded audio contains no samples")
    if not np.isfinite(samples).all():
        raise InvalidAudio("the uploaded audio contains invalid (NaN or infinite) samples")
    return samples


def duration_s(samples: np.ndarray, sampling_rate: int) -> float:
    return round(len(samples) / sampling_rate, 3)


def _decode_soundfile(data: bytes, sampling_rate: int) -> np.ndarray:
    samples, source_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if source_rate != sampling_rate and mono.size:
        mono = soxr.resample(mono, source_rate, sampling_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _decode_ffmpeg(data: bytes, sampling_rate: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise InvalidAudio(FFMPEG_MISSING)
    # A file rather than stdin: MP4/M4A often keep their index (moov atom) at the end, which
    # ffmpeg cannot seek to on a pipe.
    with tempfile.NamedTemporaryFile(suffix=".audio") as source:
        source_name = source.name
        source.write(data)
        source.flush()
        cmd = [
            ffmpeg,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            source.name,
            "-vn",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-ac",
            "1",
            "-ar",
            str(sampling_rate),
            "pipe:1",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise InvalidAudio(f"decoding the audio took longer than {FFMPEG_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = (
            reason[-1].replace(source_name, "input") if reason else f"ffmpeg exit status {proc.returncode}"
        )
        raise InvalidAudio(f"could not decode the uploaded audio: {detail}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
