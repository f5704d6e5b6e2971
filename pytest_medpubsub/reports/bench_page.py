"""`index.html` of a benchmark (`make bench`): its table and plot, each row linked to its run.

The same figures as bench.md (the README's table) with the plot inlined, so the result of a
40-minute run is one page to open; each row's run keeps its own report.html under run/.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_medpubsub.bench.run import RunFigures
from pytest_medpubsub.bench.table import HEADERS, cells, in_table_order
from pytest_medpubsub.reports.index_page import INDEX_HTML
from pytest_medpubsub.reports.markup import (
    Content,
    Html,
    definitions,
    figure,
    link,
    page,
    table,
    tag,
)
from pytest_medpubsub.reports.run_page import REPORT_HTML


def write_bench_page(
    out: Path, runs: Sequence[RunFigures], document: Mapping[str, Any], plot: Path
) -> Path:
    """Write `out/index.html`; `document` is bench.json's content (designs, machine)."""
    path = out / INDEX_HTML
    path.write_text(render_bench_page(out, runs, document, plot), encoding="utf-8")
    return path


def run_report(out: Path, run: RunFigures) -> Path:
    """Where `make bench` keeps the report of one row (pytest_medpubsub.bench.__main__)."""
    return out / "run" / f"{run.design}-{run.patients}" / "report" / REPORT_HTML


def render_bench_page(
    out: Path, runs: Sequence[RunFigures], document: Mapping[str, Any], plot: Path
) -> Html:
    ordered = in_table_order(runs)
    rows = [_row(out, run) for run in ordered]
    classes = ["failed" if run.lost_orders or run.duplicate_tabs else None for run in ordered]
    machine = document.get("machine") or {}
    designs = document.get("designs") or {}
    return page(
        "benchmark · medpubsub",
        tag("h1", "medpubsub benchmark ", tag("small", str(document.get("written_at", "")))),
        table([*HEADERS, "run"], rows, row_classes=classes),
        tag(
            "p",
            f"Latency of the orders placed after the warm-up (and of every order, the step "
            f"from 0 included); × floor: against the {document.get('floor_s', 2.0)} s a tab "
            "takes. Need: the makers whose workers hold the load's orders in flight. Red rows "
            "lost or duplicated.",
            class_="note",
        ),
        figure(plot, "Latency percentiles and peak makers against patients, per design"),
        tag("h2", "Designs and machine"),
        definitions(
            [*((name, text) for name, text in designs.items())]
            + [(f"machine {key}", value) for key, value in machine.items()]
        ),
    )


def _row(out: Path, run: RunFigures) -> list[Content]:
    report = run_report(out, run)
    here = (
        link(Path(os.path.relpath(report, out)).as_posix(), "report") if report.is_file() else "–"
    )
    return [*cells(run), here]
