"""What the repository promises about itself: every make target is listed by `make help`, the parts
import only what they may (docs/architecture.md), and README quotes the messages the code gives."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from api.routes.health import no_ready_worker
from shared.settings import WorkerSettings
from shared.worker_heartbeat import WorkerHeartbeat
from worker.audio import FFMPEG_MISSING
from worker.healthcheck import check

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[Path, set[str]]:
    """Top-level modules each file of a package imports."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path.relative_to(ROOT)] = names
    return found


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^  make (\S+)", out, re.M))
    assert listed == phony, listed ^ phony


# Who may import whom (docs/architecture.md, "What each part may import").
ALLOWED = {
    "shared": {"api", "worker", "tests", "bench", "deploy", "torch", "transformers"},
    "api": {"worker", "tests", "bench", "deploy", "torch", "transformers"},
    "worker": {"api", "tests", "bench", "deploy"},
    "bench": {"tests"},
    "deploy": {"tests", "pytest"},
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_part_imports_only_what_it_may(package: str) -> None:
    forbidden = ALLOWED[package]
    for path, names in _imports(package).items():
        assert not names & forbidden, f"{path} imports {sorted(names & forbidden)}"


def test_readme_quotes_the_messages_the_code_gives(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    # /readyz's problem for a queue without a ready worker.
    assert f"`{no_ready_worker('speech')}`" in readme
    # A job's error when the worker has no ffmpeg.
    assert f"`{FFMPEG_MISSING}`" in readme
    # The worker healthcheck's answer while the models load.
    settings = WorkerSettings(HEALTH_FILE=str(tmp_path / "health.json"))
    (tmp_path / "health.json").write_text(
        WorkerHeartbeat(
            hostname="w", pid=1, state="loading", started_at=0, updated_at=time.time()
        ).model_dump_json()
    )
    assert f"`{check(settings)[1]}`" in readme


def test_without_root_the_package_script_stops_with_the_apt_get_line() -> None:
    """`make test` on a machine that lacks a package, run by a user who cannot install it: it stops at
    once and says the exact command (as root it installs them, as every fresh CI machine shows)."""
    fake = Path(tempfile.mkdtemp(prefix="amulet-fake-bin-"))
    try:
        fake.chmod(0o755)
        for name, body in {
            "dpkg-query": "exit 1",
            "sudo": "exit 1",
            "apt-get": "echo apt-get ran; exit 9",
        }.items():
            (fake / name).write_text(f"#!/bin/sh\n{body}\n")
            (fake / name).chmod(0o755)
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        proc = subprocess.run(
            [*as_user, "bash", str(ROOT / "deploy" / "system-packages.sh"), "test"],
            env={"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(fake)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        shutil.rmtree(fake)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "apt-get ran" not in proc.stdout
    expected = "apt-get install -y --no-install-recommends redis-server espeak-ng ffmpeg sox libsndfile1"
    assert expected in proc.stderr, proc.stderr
