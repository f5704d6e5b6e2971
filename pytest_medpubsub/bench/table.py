"""The benchmark's table (Markdown, for the README): one row per load and design."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_medpubsub.bench.run import RunFigures


def _seconds(value: float | None, ratio: float | None) -> str:
    return "–" if value is None or ratio is None else f"{value:.2f} ({ratio:.2f}×)"


def markdown_table(runs: Sequence[RunFigures]) -> str:
    lines = [
        "| patients | design | p50 (× floor) | p95 (× floor) | p99 (× floor) | max | peak makers "
        "| starts/order | maker CPU s | broker CPU s | lost | dup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (r.patients, r.design)):
        lines.append(
            f"| {run.patients} | {run.design} | {_seconds(run.p50_s, run.ratio(run.p50_s))} "
            f"| {_seconds(run.p95_s, run.ratio(run.p95_s))} "
            f"| {_seconds(run.p99_s, run.ratio(run.p99_s))} "
            f"| {'–' if run.max_s is None else f'{run.max_s:.2f}'} "
            f"| {run.peak_makers if run.peak_makers is not None else '–'} "
            f"| {'–' if run.starts_per_order is None else f'{run.starts_per_order:.2f}'} "
            f"| {run.maker_cpu_s:.0f} "
            f"| {'–' if run.broker_cpu_s is None else f'{run.broker_cpu_s:.0f}'} "
            f"| {run.lost_orders} | {run.duplicate_tabs} |"
        )
    return "\n".join(lines) + "\n"
