"""``make bench`` / ``python -m bench.run``: the real stack against bare baselines, in one run.

Prints a table and writes ``bench/results/<timestamp>.md`` and ``.png``. ``--quick`` uses tiny
sizes (the test suite runs it so the harness cannot rot; its numbers mean nothing). ``--gpu``
runs only workload 4 with the whisper-large-v3-turbo architecture (random fp16 weights) and a
batch-size sweep on CUDA; ``--gpu --device cpu --quick`` checks that path on a CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench import models, report, workloads

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not speed")
    parser.add_argument("--gpu", action="store_true", help="workload 4 only, large-v3-turbo architecture")
    parser.add_argument("--device", default=None, help="device for workload 4 (default: cuda with --gpu)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the .md and .png go")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default={"1", "2", "3", "4"},
        metavar="1,2,...",
        help="run only these CPU workloads (e.g. --only 1,2 for the gateway's; default all)",
    )
    args = parser.parse_args(argv)
    sizes = workloads.QUICK if args.quick else workloads.FULL
    device = args.device or ("cuda" if args.gpu else "cpu")
    if args.gpu and not args.quick:
        sizes.whisper_shape, sizes.whisper_tokens, sizes.sweep = "large-v3-turbo", 64, [1, 2, 4, 8, 16, 32]
        sizes.transcribe_jobs = 96

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows: list[workloads.Row] = []
    sweeps: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="amulet-bench-") as tmp:
        env = workloads.Env(Path(tmp))
        try:
            if not args.gpu and "1" in args.only:
                rows.append(_step("1", workloads.gateway_throughput, env, sizes))
            if not args.gpu and "2" in args.only:
                rows.append(_step("2", workloads.round_trip, env, sizes))
            if not args.gpu and "3" in args.only:
                sweeps["embed sentences/s (bare MiniLM)"] = workloads.embed_sweep(sizes)
                rows.append(
                    _step(
                        "3", workloads.embed_saturation, env, sizes, sweeps["embed sentences/s (bare MiniLM)"]
                    )
                )
            if args.gpu or "4" in args.only:
                _transcribe(env, sizes, device, args.gpu, rows, sweeps)
        finally:
            env.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {_gpu_name(device)}"
    text = report.markdown(rows, sweeps, stamp, machine, quick=args.quick)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.md").write_text(text)
    report.plot(rows, sweeps, args.out / f"{stamp}.png")
    print(f"wrote {args.out / stamp}.md and .png", file=sys.stderr)
    return 0


def _transcribe(env: workloads.Env, sizes: workloads.Sizes, device: str, gpu: bool,
                rows: list[workloads.Row], sweeps: dict[str, dict[int, float]]) -> None:  # fmt: skip
    whisper = models.whisper_shaped(env.workdir / "whisper", sizes.whisper_shape, sizes.whisper_tokens)
    key = f"transcribe clips/s (bare pipeline, {sizes.whisper_shape}, {device})"
    sweeps[key] = workloads.whisper_sweep(whisper, sizes.sweep if gpu else sizes.sweep[:4], device)
    best = max(sweeps[key], key=sweeps[key].get)
    # On a CPU batch 1 wins (the default); show what forcing a batch costs, at batch 4.
    batched = best if (gpu or best > 1) else min(4, max(sweeps[key]))
    row = _step("4", workloads.transcribe_saturation, env, sizes, whisper, sweeps[key], device, batched)
    rows.append(row)


def _step(name: str, fn, *args):  # noqa: ANN001, ANN202 - a thin progress wrapper
    print(f"workload {name} ...", file=sys.stderr, flush=True)
    return fn(*args)


def _gpu_name(device: str) -> str:
    if device != "cuda":
        return "no GPU used"
    import torch

    return torch.cuda.get_device_name(0)


if __name__ == "__main__":
    sys.exit(main())
