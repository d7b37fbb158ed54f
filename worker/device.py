"""Which device and dtype the models run on.

``auto`` takes CUDA with fp16 when torch sees a GPU, else CPU with fp32; ``cuda`` refuses
to start without a GPU rather than silently running a large model on the CPU; ``cpu``
always uses the CPU. We also report whether a GPU was *reserved* for the container
(NVIDIA_VISIBLE_DEVICES set) although CUDA is unusable: that is almost always a
misconfiguration (no NVIDIA runtime, CPU-only torch) the operator wants to see.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from worker.errors import StartupError

log = logging.getLogger(__name__)

DeviceSetting = Literal["auto", "cuda", "cpu"]

# Values of NVIDIA_VISIBLE_DEVICES that mean "no GPU" to the NVIDIA container runtime.
_NO_GPU_VALUES = {"", "void", "none"}


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda" or "cpu", as torch and transformers pipelines take it
    dtype: torch.dtype
    cuda_available: bool
    gpu_reserved: bool
    reason: str

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def gpu_reserved(environ: Mapping[str, str]) -> bool:
    """A GPU was requested for this container (the NVIDIA runtime reads this variable)."""
    value = environ.get("NVIDIA_VISIBLE_DEVICES")
    return value is not None and value.strip().lower() not in _NO_GPU_VALUES


def choose_device(
    setting: DeviceSetting,
    *,
    cuda_available: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> DeviceChoice:
    """Decide the device; raise StartupError when ``cuda`` is required but unavailable."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    reserved = gpu_reserved(os.environ if environ is None else environ)

    if setting == "cpu":
        return DeviceChoice("cpu", torch.float32, cuda_available, reserved, "AMULET_DEVICE=cpu")
    if cuda_available:
        name = torch.cuda.get_device_name(0)
        return DeviceChoice("cuda", torch.float16, True, reserved, f"CUDA available ({name})")
    if setting == "cuda":
        hint = (
            "a GPU is reserved (NVIDIA_VISIBLE_DEVICES is set) but torch cannot use it: check the NVIDIA "
            "container runtime and that this image has CUDA-enabled torch"
            if reserved
            else "no GPU is visible to this container: run it with a GPU (compose `gpus`/`deploy.resources`)"
        )
        raise StartupError(
            f"AMULET_DEVICE=cuda but CUDA is not available ({torch.__version__}): {hint}; "
            "or set AMULET_DEVICE=auto or cpu to run on the CPU"
        )
    reason = (
        "fallback to CPU: a GPU is reserved (NVIDIA_VISIBLE_DEVICES is set) but CUDA is not available"
        if reserved
        else "fallback to CPU: no GPU visible"
    )
    return DeviceChoice("cpu", torch.float32, False, reserved, reason)


def log_choice(choice: DeviceChoice, setting: DeviceSetting) -> None:
    level = logging.WARNING if choice.gpu_reserved and choice.device == "cpu" else logging.INFO
    log.log(
        level,
        "device: %s dtype=%s (AMULET_DEVICE=%s; %s)",
        choice.device,
        choice.dtype_name,
        setting,
        choice.reason,
    )
