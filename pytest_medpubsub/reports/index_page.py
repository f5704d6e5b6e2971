"""`index.html` of a session: every scenario with its verdict and headline figures, linked.

Written beside the scenarios' folders (under `--medpubsub-report`), so its links are relative and
the whole folder can be archived by CI and opened anywhere. It reads each `report.json` again
rather than taking figures from the plugin, so it shows exactly what each page shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_medpubsub.reports.markup import Content, Html, link, page, table, tag
from pytest_medpubsub.reports.run_page import (
    REPORT_HTML,
    failed_checks,
    failure_line,
    verdict_word,
)

INDEX_HTML = "index.html"


def write_index(root: Path, reports: Sequence[tuple[str, Path]], title: str) -> Path:
    """Write `root/index.html` listing `reports` ((name, path of report.json), in run order)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / INDEX_HTML
    path.write_text(render_index(root, reports, title), encoding="utf-8")
    return path


def render_index(root: Path, reports: Sequence[tuple[str, Path]], title: str) -> Html:
    rows: list[Sequence[Content]] = []
    classes: list[str | None] = []
    failed = 0
    for name, report_json in reports:
        document = _read(report_json)
        word = verdict_word(document) if document is not None else "unreadable"
        failed += word in ("SLO FAILED", "unreadable")
        page_path = report_json.parent / REPORT_HTML
        href = os.path.relpath(page_path, root)
        rows.append(
            (
                word,
                link(Path(href).as_posix(), name),
                *_headline(document or {}),
                _why(document or {}),
            )
        )
        classes.append("failed" if word in ("SLO FAILED", "unreadable") else "passed")
    verdict = (
        tag("div", tag("strong", f"{failed} of {len(reports)} FAILED"), class_="verdict failed")
        if failed
        else tag(
            "div", tag("strong", f"all {len(reports)} met their SLOs"), class_="verdict passed"
        )
    )
    headers = ["verdict", "scenario", "orders", "p50", "p95", "p99", "lost", "dup", "peak makers"]
    return page(
        f"{title} · medpubsub",
        tag("h1", "medpubsub ", tag("small", title)),
        verdict,
        table([*headers, "failed checks"], rows, row_classes=classes),
        tag(
            "p",
            "Each scenario's page has its SLO table, plots, faults and settings.",
            class_="note",
        ),
    )


def _read(path: Path) -> Mapping[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, Mapping) else None


def _headline(document: Mapping[str, Any]) -> list[Content]:
    latency = document.get("latency_s") or {}

    def seconds(key: str) -> str:
        value = latency.get(key)
        return "–" if not isinstance(value, int | float) else f"{value:.2f} s"

    return [
        document.get("orders"),
        seconds("p50"),
        seconds("p95"),
        seconds("p99"),
        document.get("lost_orders"),
        document.get("duplicate_tabs"),
        document.get("max_jobs"),
    ]


def _why(document: Mapping[str, Any]) -> str:
    slo = document.get("slo")
    spec = slo.get("spec") if isinstance(slo, Mapping) else None
    return "; ".join(failure_line(check, spec) for check in failed_checks(document)) or "–"
