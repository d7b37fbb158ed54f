"""`make bench` cannot rot: its harness runs end to end in quick mode (tiny sizes, real processes).
Nothing here looks at the numbers; timings are never asserted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(400)


def test_quick_bench_writes_a_table_and_a_plot(tmp_path: Path) -> None:
    for module in ("matplotlib", "aiohttp"):
        pytest.importorskip(module, reason="bench-only: `make bench` installs requirements/bench.txt")
    if shutil.which("wrk") is None:
        pytest.skip("wrk (Debian package) is not installed; `make bench` installs it")
    from bench.run import main

    assert main(["--quick", "--out", str(tmp_path)]) == 0
    (table,) = tmp_path.glob("*.md")
    text = table.read_text()
    for workload in ("1. POST /jobs", "2. trivial job", "3. embed", "4. transcribe"):
        assert workload in text
    assert len(list(tmp_path.glob("*.png"))) == 1


def test_gpu_command_runs_its_workload_on_cpu_with_a_small_model(tmp_path: Path) -> None:
    # `make bench-gpu` on a machine without a GPU: the same code path (workload 4 only, the sweep,
    # batching on and off) with the toy Whisper shape, so it is ready when a GPU is.
    for module in ("matplotlib", "aiohttp"):
        pytest.importorskip(module, reason="bench-only: `make bench` installs requirements/bench.txt")
    from bench.run import main

    assert main(["--gpu", "--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    (table,) = tmp_path.glob("*.md")
    text = table.read_text()
    assert "4. transcribe" in text and "1. POST /jobs" not in text
    assert "transcribe clips/s (bare pipeline, toy, cpu)" in text
