"""Turn a model reference (a local directory or a Hugging Face Hub id) into a local directory.

Both go through the same path so tests (local dirs made with ``save_pretrained``) exercise
the code that serves users (Hub ids downloaded into the HF cache, HF_HOME, a volume).
huggingface_hub reads HF_HOME, HF_TOKEN and HF_HUB_OFFLINE itself and shows download
progress on stderr, so none of those is re-implemented here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from shared.settings import WorkerSettings
from shared.tasks import TaskName
from worker.errors import StartupError

log = logging.getLogger(__name__)

# Weights for other frameworks and runtimes: many repos carry several copies of the model
# (all-MiniLM-L6-v2 has ONNX, OpenVINO, TF, Flax and Rust variants); we only load PyTorch.
_NOT_FOR_PYTORCH = [
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.onnx",
    "*.onnx_data",
    "onnx/*",
    "openvino/*",
    "*.tflite",
    "coreml/*",
    "*.mlmodel",
    "*.gguf",
]


def env_name(task: TaskName) -> str:
    return f"AMULET_{task.value.upper()}_MODEL"


def hf_token(settings: WorkerSettings) -> str | None:
    """The token from the secret file, if there is one; else None, and huggingface_hub uses HF_TOKEN."""
    path = Path(settings.HF_TOKEN_FILE)
    try:
        token = path.read_text().strip() if path.is_file() else ""
    except OSError as exc:
        log.warning("cannot read the Hugging Face token file %s: %s", path, exc)
        token = ""
    return token or None


def _ignore_patterns(repo_id: str, token: str | None) -> list[str]:
    patterns = list(_NOT_FOR_PYTORCH)
    if constants.HF_HUB_OFFLINE:
        return patterns
    try:
        files = HfApi().list_repo_files(repo_id, token=token)
    except Exception:  # snapshot_download below reports the real problem
        return patterns
    # Old repos carry both formats; skip the legacy pickle when safetensors exist beside it.
    if any(f.endswith(".safetensors") and "/" not in f for f in files):
        patterns.append("pytorch_model*.bin")
    return patterns


def resolve_model(ref: str, task: TaskName, settings: WorkerSettings) -> Path:
    """A local directory for ``ref``: the directory itself, or the Hub snapshot in the HF cache."""
    local = Path(ref).expanduser()
    if local.is_dir():
        log.info("%s: using local directory %s", task.value, local)
        return local.resolve()

    token = hf_token(settings)
    hint = f"or point {env_name(task)} at a local model directory"
    try:
        log.info(
            "%s: fetching %s from the Hugging Face Hub into %s (offline=%s)",
            task.value,
            ref,
            constants.HF_HUB_CACHE,
            constants.HF_HUB_OFFLINE,
        )
        path = snapshot_download(ref, token=token, ignore_patterns=_ignore_patterns(ref, token))
    except GatedRepoError as exc:
        raise StartupError(
            f"cannot download {ref}: the repository is gated; accept its terms on huggingface.co and "
            f"provide a token (HF_TOKEN or the file {settings.HF_TOKEN_FILE}), {hint}"
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise StartupError(
            f"cannot download {ref}: no such repository on the Hub (or it is private and no valid token "
            f"was given); if {ref!r} was meant as a local directory, it does not exist; {hint}"
        ) from exc
    except HFValidationError as exc:
        raise StartupError(
            f"{env_name(task)}={ref!r} is neither an existing directory nor a valid Hub repository id"
        ) from exc
    except LocalEntryNotFoundError as exc:
        if constants.HF_HUB_OFFLINE:
            raise StartupError(
                f"cannot load {ref}: HF_HUB_OFFLINE=1 and it is not in the cache ({constants.HF_HUB_CACHE}); "
                f"run `python -m worker.download` with network access first, {hint}"
            ) from exc
        raise StartupError(
            f"cannot download {ref}: no network and not in the cache ({constants.HF_HUB_CACHE}); set "
            f"HF_HUB_OFFLINE=1 with a pre-filled cache {hint}"
        ) from exc
    except OSError as exc:  # HTTP errors, a full or read-only cache volume
        raise StartupError(f"cannot download {ref}: {exc}; {hint}") from exc
    log.info("%s: %s is at %s", task.value, ref, path)
    return Path(path)
