"""The report of a run (docs/design.md §2.5): `report.json`, the PNG plots, `report.html`, and JUnit
properties.

`report.json` is the summary's JSON with the SLO verdict beside it and whatever else the run
collected (run settings, faults injected, Locust statistics, chaos journal) under its own key, so
one file answers "what happened" for a CI run that is long gone; `report.html` is drawn from it
alone (`render_again` draws it again, plots included, from a copied report.json).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_medpubsub.observer import Summary
from pytest_medpubsub.plots import DISTRIBUTION_PNG, LATENCY_PNG, SCALING_PNG, write_plots
from pytest_medpubsub.reports.faults import faults_of
from pytest_medpubsub.reports.run_page import write_run_page
from pytest_medpubsub.reports.scaling import scale_in_s, scale_out_s
from pytest_medpubsub.slo import SloCheck, SloResult

REPORT_JSON = "report.json"


class ReportUnreadable(Exception):
    """A directory holds no report.json this version can draw; the message is one sentence."""


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
    """Write `report.json`, the plots and `report.html` into `directory`; return the path of
    `report.json`.

    The JSON is written first so that the numbers survive even if drawing fails.
    """
    directory.mkdir(parents=True, exist_ok=True)
    document = report_document(summary, slo, extra)
    path = directory / REPORT_JSON
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    # The page reads the document as report.json holds it (what `render_again` will read too).
    stored = json.loads(path.read_text())
    slo_p95_s = None if slo is None else slo.spec.p95_s
    write_plots(directory, summary, slo_p95_s, faults_of(stored))
    write_run_page(directory, stored)
    return path


def render_again(directory: Path) -> Path:
    """Draw `report.html` again from `directory`'s report.json (the plots too when they are
    missing, e.g. only report.json was copied out of CI); return the page's path.

    Raises ReportUnreadable with one sentence when there is nothing this version can draw.
    """
    path = directory / REPORT_JSON
    if directory.is_file() and directory.name == REPORT_JSON:
        directory, path = directory.parent, directory
    if not path.is_file():
        raise ReportUnreadable(f"{directory} has no {REPORT_JSON}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportUnreadable(f"{path} is not valid JSON ({error})") from None
    if not isinstance(document, Mapping):
        raise ReportUnreadable(f"{path} does not hold a JSON object")
    summary = _summary_of(document, path)
    if not all(
        (directory / name).is_file() for name in (LATENCY_PNG, DISTRIBUTION_PNG, SCALING_PNG)
    ):
        slo = document.get("slo")
        spec = slo.get("spec") if isinstance(slo, Mapping) else None
        p95 = spec.get("p95_s") if isinstance(spec, Mapping) else None
        write_plots(directory, summary, p95 if isinstance(p95, int | float) else None,
                    faults_of(document))  # fmt: skip
    return write_run_page(directory, document)


def _summary_of(document: Mapping[str, Any], path: Path) -> Summary:
    fields = Summary.model_fields
    missing = sorted(name for name in fields if name not in document)
    if missing:
        raise ReportUnreadable(
            f"{path} is not a medpubsub report (missing {', '.join(missing[:4])}"
            f"{', …' if len(missing) > 4 else ''})"
        )
    try:
        return Summary.model_validate({name: document[name] for name in fields})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ReportUnreadable(f"{path}: {where} is invalid ({first['msg']})") from None


def junit_properties(
    summary: Summary,
    slo: SloResult | None,
    settings: Mapping[str, Any] | None = None,
) -> list[tuple[str, object]]:
    """The headline figures as (name, value) pairs for pytest's `record_property`.

    The names are a contract (docs/reports.md): CI charts key on them.
    """
    stats = summary.latency_s
    settings = settings or {}
    warm = settings.get("warm_makers")
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
        ("scale_out_s", _scale_seconds(slo, "scale_out", scale_out_s(summary.timeline))),
        (
            "scale_in_s",
            _scale_seconds(
                slo, "scale_in", scale_in_s(summary.timeline, warm if isinstance(warm, int) else 0)
            ),
        ),
        ("design", settings.get("design")),
        ("platform", settings.get("platform")),
        ("secure", settings.get("secure")),
    ]
    if slo is not None:
        properties.append(("slo_passed", slo.passed))
        properties.extend((f"slo_{check.name}", _verdict(check)) for check in slo.checks)
    return properties


def _scale_seconds(slo: SloResult | None, check_name: str, computed: float | None) -> float | None:
    """The SLO check's own figure when the run had that check (None when it measured no number),
    else the figure computed the same way for every run (pytest_medpubsub.reports.scaling)."""
    if slo is not None:
        for check in slo.checks:
            if check.name == check_name:
                measured = check.measured
                return round(float(measured), 3) if isinstance(measured, int | float) else None
    return computed


def _verdict(check: SloCheck) -> str:
    mark = "✓" if check.passed else "✗"
    return f"{mark} {check.measured_text()} (required {check.required})"
