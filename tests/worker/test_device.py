"""Device selection: auto falls back to the CPU, cpu is honoured, cuda without a GPU refuses to start."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from deploy.local import stack
from worker.device import choose_device, gpu_reserved
from worker.errors import StartupError


def test_auto_without_cuda_runs_on_cpu_in_float32() -> None:
    choice = choose_device("auto", cuda_available=False, environ={})
    assert (choice.device, choice.dtype, choice.dtype_name) == ("cpu", torch.float32, "float32")
    assert choice.cuda_available is False and choice.gpu_reserved is False


def test_cpu_is_honoured_even_when_cuda_is_available() -> None:
    choice = choose_device("cpu", cuda_available=True, environ={})
    assert choice.device == "cpu" and choice.dtype == torch.float32


def test_cuda_without_a_gpu_raises_a_startup_error_naming_the_setting() -> None:
    with pytest.raises(StartupError, match="AMULET_DEVICE=cuda"):
        choose_device("cuda", cuda_available=False, environ={})


def test_reserved_but_unusable_gpu_is_reported() -> None:
    choice = choose_device("auto", cuda_available=False, environ={"NVIDIA_VISIBLE_DEVICES": "all"})
    assert choice.device == "cpu" and choice.gpu_reserved is True
    with pytest.raises(StartupError, match="NVIDIA"):
        choose_device("cuda", cuda_available=False, environ={"NVIDIA_VISIBLE_DEVICES": "0"})


@pytest.mark.parametrize(
    ("value", "reserved"),
    [(None, False), ("", False), ("void", False), ("none", False), ("all", True), ("0,1", True)],
)
def test_gpu_reserved_follows_nvidia_visible_devices(value: str | None, reserved: bool) -> None:
    assert gpu_reserved({} if value is None else {"NVIDIA_VISIBLE_DEVICES": value}) is reserved


@pytest.mark.timeout(120)
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; the refusal needs none")
def test_worker_process_with_device_cuda_and_no_gpu_exits_nonzero_with_a_clear_message(
    redis_server: stack.RedisServer, run_dir
) -> None:
    # db 3 of the session Redis: nobody else reads heartbeats there.
    env = stack.worker_env(
        redis_server.url(3),
        {},
        health_file=run_dir / "cuda-worker-health.json",
        extra={"AMULET_DEVICE": "cuda"},
    )
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=stack.REPO_ROOT,
        env={**stack.os.environ, **env, "PYTHONPATH": str(stack.REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=100,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "AMULET_DEVICE=cuda" in output and "CUDA is not available" in output, output
    # The failure is also visible to the gateway and the healthcheck.
    beats = stack.worker_heartbeats(redis_server.client(3))
    assert [b["state"] for b in beats] == ["failed"], beats
    assert "CUDA" in beats[0]["message"]
    health = json.loads((run_dir / "cuda-worker-health.json").read_text())
    assert health["state"] == "failed"
