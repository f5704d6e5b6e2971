"""The benchmark's picture: latency percentiles and peak makers against patients, per design,
with the 2 s physical floor drawn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter

from pytest_medpubsub.bench.capacity import FLOOR_S
from pytest_medpubsub.bench.run import RunFigures

_STYLES = {"capacity": "tab:blue", "one-at-a-time": "tab:orange", "dispatcher": "tab:green"}


def plot_bench(runs: Sequence[RunFigures], target: Path, max_replicas: int | None = None) -> Path:
    figure, (latency, makers) = plt.subplots(1, 2, figsize=(12, 4.8))
    for design in dict.fromkeys(run.design for run in runs):
        mine = sorted((run for run in runs if run.design == design), key=lambda r: r.patients)
        patients = [run.patients for run in mine]
        color = _STYLES.get(design, "tab:gray")
        for name, style in (("p50", ":"), ("p95", "-"), ("p99", "--")):
            values = [getattr(run, f"{name}_s") for run in mine]
            latency.plot(patients, values, style, color=color, marker="o", label=f"{design} {name}")
        makers.plot(
            patients, [run.peak_makers for run in mine], "-", color=color, marker="s", label=design
        )
    latency.axhline(FLOOR_S, color="black", linewidth=1)
    latency.axhline(1.25 * FLOOR_S, color="gray", linewidth=1, linestyle="-.")
    latency.text(0.5, FLOOR_S, " floor 2.0 s", va="bottom", fontsize=8)
    latency.text(0.5, 1.25 * FLOOR_S, " 1.25 x floor", va="bottom", fontsize=8, color="gray")
    latency.set(xlabel="patients", ylabel="order latency (s)", title="Order latency", yscale="log")
    latency.yaxis.set_major_formatter(ScalarFormatter())
    latency.yaxis.set_minor_formatter(ScalarFormatter())
    latency.legend(fontsize=7, ncol=2)
    if max_replicas is not None:
        makers.axhline(max_replicas, color="black", linewidth=1, linestyle="-.")
        makers.text(0.5, max_replicas, " maxReplicaCount", va="bottom", fontsize=8)
    makers.set(xlabel="patients", ylabel="peak makers", title="Peak makers (Jobs)")
    makers.legend(fontsize=8)
    for axes in (latency, makers):
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
