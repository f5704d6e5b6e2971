"""The benchmark's table: its columns and cells, once, for bench.md (the README's table) and
for the bench page (reports/bench_page.py)."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_medpubsub.bench.run import RunFigures

DASH = "–"
HEADERS = [
    "patients", "design", "p50 (× floor)", "p95 (× floor)", "p99 (× floor)",
    "p95 with the step (× floor)", "max", "peak makers (need + floor)", "bound reached",
    "CPU ms/order: makers / broker / harness", "lost", "dup",
]  # fmt: skip


def cells(run: RunFigures) -> list[str]:
    """One row's cells, in the order of HEADERS."""
    return [
        str(run.patients),
        run.design,
        _seconds(run.p50_s, run.ratio(run.p50_s)),
        _seconds(run.p95_s, run.ratio(run.p95_s)),
        _seconds(run.p99_s, run.ratio(run.p99_s)),
        _seconds(run.p95_with_warm_up_s, run.ratio(run.p95_with_warm_up_s)),
        _number(run.max_s, 2),
        _makers(run),
        run.bound or DASH,
        _cpu_per_order(run),
        str(run.lost_orders),
        str(run.duplicate_tabs),
    ]


def in_table_order(runs: Sequence[RunFigures]) -> list[RunFigures]:
    return sorted(runs, key=lambda run: (run.patients, run.design))


def markdown_table(runs: Sequence[RunFigures]) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
        *("| " + " | ".join(cells(run)) + " |" for run in in_table_order(runs)),
    ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None, ratio: float | None) -> str:
    return DASH if value is None or ratio is None else f"{value:.2f} ({ratio:.2f}×)"


def _number(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _makers(run: RunFigures) -> str:
    """Peak makers, and what the load needs plus the warm floor: "14 (3 + 2)"."""
    peak = DASH if run.peak_makers is None else str(run.peak_makers)
    if run.makers_needed is None or run.warm_floor is None:
        return peak
    return f"{peak} ({run.makers_needed} + {run.warm_floor})"


def _cpu_per_order(run: RunFigures) -> str:
    """CPU ms per order placed, of the makers, the broker and the harness: "210 / 95 / 40"."""
    parts = (run.maker_cpu_s, run.broker_cpu_s, run.harness_cpu_s)
    return " / ".join(_number(run.cpu_ms_per_order(part)) for part in parts)
