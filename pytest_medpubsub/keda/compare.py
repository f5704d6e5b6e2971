"""The same patient step on the local platform and on a cluster with the real KEDA, side by side.

`python -m pytest_medpubsub.keda.compare --local L/report.json --cluster C/report.json --out P`
reads two step-ramp reports (`scenarios/test_step_ramp.py`, one from `make test`, one from
`make e2e-here`), draws their makers and lag against the seconds since the step in one plot,
and prints a Markdown table of the figures both runs measured: peak makers, time to scale out,
time back to the warm floor, order latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

NS_PER_S = 1e9


@dataclass(frozen=True)
class StepRun:
    """One platform's run of the step: its timeline (from the step on) and its figures."""

    label: str
    seconds: list[float]
    jobs: list[int | None]
    lag: list[int | None]
    figures: dict[str, float | int | str | None]


def step_run(label: str, report: dict[str, Any]) -> StepRun:
    """Read a step-ramp report: the timeline aligned on the step, and the headline figures."""
    timeline = report["timeline"]
    peak = max((s["patients"] or 0 for s in timeline), default=0)
    step_ns = next(
        (s["t_ns"] for s in timeline if (s["patients"] or 0) == peak), timeline[0]["t_ns"]
    )
    checks = {
        check["name"]: check["measured"] for check in (report.get("slo") or {}).get("checks", [])
    }
    latency = report.get("latency_s") or {}
    return StepRun(
        label=label,
        seconds=[(s["t_ns"] - step_ns) / NS_PER_S for s in timeline],
        jobs=[s["jobs"] for s in timeline],
        lag=[s["lag"] for s in timeline],
        figures={
            "orders": report.get("orders"),
            "peak makers": report.get("max_jobs"),
            "scale out (s)": checks.get("scale_out"),
            "back to the warm floor (s)": checks.get("scale_in"),
            "p50 (s)": latency.get("p50"),
            "p95 (s)": latency.get("p95"),
            "p99 (s)": latency.get("p99"),
            "lost orders": report.get("lost_orders"),
            "duplicate tabs": report.get("duplicate_tabs"),
        },
    )


def markdown(runs: list[StepRun]) -> str:
    names = list(runs[0].figures)
    lines = ["| figure | " + " | ".join(run.label for run in runs) + " |"]
    lines.append("|---|" + "---|" * len(runs))
    for name in names:
        cells = [_cell(run.figures[name]) for run in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: float | int | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def plot(runs: list[StepRun], target: Path) -> Path:
    figure, (jobs_axes, lag_axes) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for run, color in zip(runs, ("tab:blue", "tab:red"), strict=False):
        jobs_axes.step(run.seconds, run.jobs, where="post", color=color, label=run.label)
        lag_axes.plot(run.seconds, run.lag, color=color, label=run.label)
    jobs_axes.set(ylabel="unfinished maker Jobs", title="The same patient step (1 → 5 patients)")
    lag_axes.set(xlabel="seconds since the step", ylabel="lag of tabs.orders (orders)")
    for axes in (jobs_axes, lag_axes):
        axes.axvline(0, color="gray", linewidth=1, linestyle=":")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_medpubsub.keda.compare")
    parser.add_argument("--local", type=Path, required=True, help="the local step-ramp report.json")
    parser.add_argument("--cluster", type=Path, required=True, help="the cluster's report.json")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    arguments = parser.parse_args(argv)
    runs = []
    for label, path in (
        ("local (KEDA reproduced)", arguments.local),
        ("cluster (KEDA 2.20.2)", arguments.cluster),
    ):
        try:
            runs.append(step_run(label, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError) as error:
            print(f"compare: cannot read the report {path}: {error}", file=sys.stderr)
            return 2
    plot(runs, arguments.out)
    print(markdown(runs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
