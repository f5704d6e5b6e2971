"""The report of a run (DESIGN.md §3.5): `report.json`, the PNG plots, and JUnit properties.

`report.json` is the summary's JSON with the SLO verdict beside it and whatever else the run
collected (Locust statistics, chaos journal) under its own key, so one file answers "what
happened" for a CI run that is long gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_medpubsub.observer import Summary
from pytest_medpubsub.plots import write_plots
from pytest_medpubsub.slo import SloCheck, SloResult

REPORT_JSON = "report.json"


def report_document(
    summary: Summary, slo: SloResult | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The content of `report.json`; `extra` keys must not replace the summary's own."""
    document = summary.to_dict()
    document["slo"] = None if slo is None else slo.to_dict()
    clashes = sorted(set(extra or {}) & set(document))
    if clashes:
        raise ValueError(f"extra report sections would overwrite {', '.join(clashes)}")
    document.update(extra or {})
    return document


def write_report(
    directory: Path,
    summary: Summary,
    slo: SloResult | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `report.json` and the plots into `directory`; return the path of `report.json`.

    The JSON is written before the plots so that the numbers survive even if drawing fails.
    """
    directory.mkdir(parents=True, exist_ok=True)
    document = report_document(summary, slo, extra)
    path = directory / REPORT_JSON
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    slo_p95_s = None if slo is None else slo.spec.p95_s
    write_plots(directory, summary, slo_p95_s)
    return path


def junit_properties(summary: Summary, slo: SloResult | None) -> list[tuple[str, object]]:
    """The headline figures as (name, value) pairs for pytest's `record_property`."""
    stats = summary.latency_s
    properties: list[tuple[str, object]] = [
        ("orders", summary.orders),
        ("tabs", summary.tabs),
        ("complete_orders", summary.complete_orders),
        ("lost_orders", summary.lost_orders),
        ("duplicate_tabs", summary.duplicate_tabs),
        ("dead_letters", summary.dead_letters),
        ("latency_p50_s", None if stats is None else round(stats.p50, 3)),
        ("latency_p95_s", None if stats is None else round(stats.p95, 3)),
        ("latency_p99_s", None if stats is None else round(stats.p99, 3)),
        ("latency_max_s", None if stats is None else round(stats.max, 3)),
        ("max_jobs", summary.max_jobs),
    ]
    if slo is not None:
        properties.append(("slo_passed", slo.passed))
        properties.extend((f"slo_{check.name}", _verdict(check)) for check in slo.checks)
    return properties


def _verdict(check: SloCheck) -> str:
    mark = "✓" if check.passed else "✗"
    return f"{mark} {check.measured_text()} (required {check.required})"
