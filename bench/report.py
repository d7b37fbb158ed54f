"""The benchmark's table (markdown, printed and written) and its plot."""

from __future__ import annotations

from pathlib import Path

from bench.workloads import Row


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def markdown(
    rows: list[Row], sweeps: dict[str, dict[int, float]], stamp: str, machine: str, quick: bool
) -> str:
    lines = [
        f"# Amulet benchmark {stamp}",
        "",
        f"Machine: {machine}." + (" QUICK MODE: sizes too small to mean anything." if quick else ""),
        "",
    ]
    lines += [
        "| workload | metric | Amulet | baselines | ratio | target | met | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = "; ".join(f"{k}: {_fmt(v)}" for k, v in r.baselines.items())
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = {True: "yes", False: "no", None: "n/a"}[r.met]
        lines.append(
            f"| {r.workload} | {r.metric} | {_fmt(r.amulet)} | {base} | {ratio} | {r.target} | {met} "
            f"| {r.note} |"
        )
    for name, sweep in sweeps.items():
        lines += [
            "",
            f"Sweep, {name}:",
            "",
            "| batch | " + " | ".join(str(b) for b in sweep) + " |",
            "|---" * (len(sweep) + 1) + "|",
            "| per s | " + " | ".join(_fmt(v) for v in sweep.values()) + " |",
        ]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], sweeps: dict[str, dict[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(sweeps), figsize=(6 * (1 + len(sweeps)), 4.5))
    axes = list(axes) if len(sweeps) else [axes]
    labels, amulet, best = [], [], []
    for r in rows:
        labels.append(r.workload.split(" ")[0] + " " + r.metric)
        base = next(iter(r.baselines.values()))
        amulet.append(r.amulet / base if base else 0)
        best.append(1.0)
    axes[0].bar(range(len(rows)), amulet, color="tab:blue", label="Amulet / first baseline")
    axes[0].axhline(1.0, color="grey", linestyle="--")
    axes[0].set_xticks(range(len(rows)), labels, rotation=20, fontsize=8)
    axes[0].set_title("Amulet relative to its first baseline")
    axes[0].legend(fontsize=8)
    for ax, (name, sweep) in zip(axes[1:], sweeps.items(), strict=True):
        ax.plot(list(sweep), list(sweep.values()), marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
