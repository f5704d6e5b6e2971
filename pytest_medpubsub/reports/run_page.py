"""`report.html`: one run on one page, rendered from its `report.json` and the plots beside it.

The first screen answers "did it hold, and if not, what broke by how much": the verdict, the
headline figures, the SLO table and the latency plots. Below come the timeline with the faults
that were injected, the slowest orders, the dead letters and other problems, the run's settings
and the diagnostics dump. Everything is inlined, so the file can be mailed or kept as a CI
artifact on its own (links to the diagnostics are relative and work beside the folder).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_medpubsub.observer import NS_PER_S
from pytest_medpubsub.plots import DISTRIBUTION_PNG, LATENCY_PNG, SCALING_PNG
from pytest_medpubsub.reports.faults import Fault, faults_of
from pytest_medpubsub.reports.margins import margin, measured_text
from pytest_medpubsub.reports.markup import (
    Content,
    Html,
    definitions,
    figure,
    join,
    link,
    page,
    table,
    tag,
)

REPORT_HTML = "report.html"
DIAGNOSTICS = "diagnostics"
SLOWEST_SHOWN = 10
DIAGNOSTIC_FILES_SHOWN = 60
# Sections of report.json that this page shows itself; others are listed by name.
_SHOWN = {
    "orders", "tabs", "complete_orders", "incomplete_orders", "lost_orders", "duplicate_tabs",
    "dead_letters", "latency_s", "made_latency_s", "max_jobs", "timeline", "throughput",
    "per_order", "lost_order_ids", "makers", "orphan_tabs", "invalid_orders", "invalid_tabs",
    "since_ns", "observed_at_ns", "final", "slo", "settings", "design", "faults",
    "dead_letter_records",
}  # fmt: skip


def render_run_page(document: Mapping[str, Any], directory: Path) -> Html:
    """The page of the run whose `report.json` is `document` and whose files are in
    `directory`."""
    settings = document.get("settings") or {}
    name = str(settings.get("name") or directory.name)
    faults = faults_of(document)
    origin = time_origin_ns(document)
    diagnostics = directory / DIAGNOSTICS
    return page(
        f"{verdict_word(document)} · {name} · medpubsub",
        tag("h1", "medpubsub run ", tag("small", name)),
        _verdict(document, diagnostics if diagnostics.is_dir() else None),
        _tiles(document),
        tag(
            "div",
            tag("section", tag("h2", "SLO checks"), _slo_table(document)),
            tag("section", tag("h2", "Run settings"), _settings(document)),
            class_="top",
        ),
        tag(
            "div",
            figure(directory / LATENCY_PNG, "Order latency over the run"),
            figure(directory / DISTRIBUTION_PNG, "Latency distribution"),
            class_="plots",
        ),
        tag("h2", "Timeline: patients, makers and lag, with the faults injected"),
        tag(
            "div",
            figure(directory / SCALING_PNG, "Patients, makers, lag and throughput; faults marked"),
            class_="wide",
        ),
        _faults_table(faults, origin),
        tag("h2", f"Slowest orders (up to {SLOWEST_SHOWN})"),
        _slowest(document, origin),
        tag("h2", "Dead letters and other problems"),
        _problems(document, origin),
        _other_sections(document),
        tag("h2", "Diagnostics"),
        _diagnostics(diagnostics, directory),
        tag("h2", "Run details"),
        _details(document),
        tag(
            "p",
            "Rendered from report.json; draw it again with ",
            tag("code", f"medpubsub report {directory}"),
            ".",
            class_="note",
        ),
    )


def write_run_page(directory: Path, document: Mapping[str, Any] | None = None) -> Path:
    """Write `report.html` into `directory` (from its report.json unless `document` is given)."""
    if document is None:
        document = json.loads((directory / "report.json").read_text(encoding="utf-8"))
        if not isinstance(document, Mapping):
            raise ValueError("report.json does not hold a JSON object")
    path = directory / REPORT_HTML
    path.write_text(render_run_page(document, directory), encoding="utf-8")
    return path


# ------------------------------------------------------------------ pieces, also used elsewhere


def verdict_word(document: Mapping[str, Any]) -> str:
    slo = document.get("slo")
    if not isinstance(slo, Mapping):
        return "no SLO"
    return "SLO met" if slo.get("passed") else "SLO FAILED"


def failed_checks(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    slo = document.get("slo")
    if not isinstance(slo, Mapping):
        return []
    return [check for check in slo.get("checks") or [] if not check.get("passed")]


def failure_line(check: Mapping[str, Any], spec: Mapping[str, Any] | None) -> str:
    """`latency_p95: 4.20 s, required ≤ 3 s (1.20 s over, +40 %)`."""
    by = margin(check, spec)
    return f"{check.get('name')}: {measured_text(check)}, required {check.get('required')}" + (
        f" ({by})" if by else ""
    )


def slo_table(document: Mapping[str, Any]) -> Html:
    """Every check as the terminal prints it, with the margin to its bound; failed rows red."""
    return _slo_table(document)


def time_origin_ns(document: Mapping[str, Any]) -> int | None:
    """Time zero of the run (the plots' too): its mark, else the first thing observed."""
    since = document.get("since_ns")
    if isinstance(since, int):
        return since
    firsts = [row.get("ordered_at_ns") for row in (document.get("per_order") or [])[:1]]
    firsts += [sample.get("t_ns") for sample in (document.get("timeline") or [])[:1]]
    known = [value for value in firsts if isinstance(value, int)]
    return min(known) if known else None


def seconds_since(at_ns: int | None, origin: int | None) -> str:
    if at_ns is None or origin is None:
        return "–"
    return f"{(at_ns - origin) / NS_PER_S:+.1f} s"


# ------------------------------------------------------------------ sections


def _verdict(document: Mapping[str, Any], diagnostics: Path | None) -> Html:
    word = verdict_word(document)
    slo = document.get("slo")
    spec = slo.get("spec") if isinstance(slo, Mapping) else None
    failed = failed_checks(document)
    style = "none" if not isinstance(slo, Mapping) else ("failed" if failed else "passed")
    why: list[Content] = []
    if failed:
        why.append(join((failure_line(check, spec) for check in failed), "; "))
    elif isinstance(slo, Mapping):
        why.append(f"all {len(slo.get('checks') or [])} checks passed")
    else:
        why.append("this run was not held to SLOs")
    parts: list[Content] = [tag("strong", word), tag("span", *why, class_="why")]
    if diagnostics is not None:
        parts.append(
            tag("span", "diagnostics: ", link(f"{DIAGNOSTICS}/", f"{DIAGNOSTICS}/"), class_="why")
        )
    return tag("div", *parts, class_=f"verdict {style}")


def _tiles(document: Mapping[str, Any]) -> Html:
    latency = document.get("latency_s") or {}
    tiles: list[tuple[str, Content, bool]] = [
        ("orders", document.get("orders"), False),
        ("complete", document.get("complete_orders"), False),
        ("lost", document.get("lost_orders"), bool(document.get("lost_orders"))),
        ("duplicate tabs", document.get("duplicate_tabs"), bool(document.get("duplicate_tabs"))),
        ("dead letters", document.get("dead_letters"), bool(document.get("dead_letters"))),
        ("p50", _seconds(latency.get("p50")), False),
        ("p95", _seconds(latency.get("p95")), False),
        ("p99", _seconds(latency.get("p99")), False),
        ("max", _seconds(latency.get("max")), False),
        ("peak makers", document.get("max_jobs"), False),
        ("tabs", document.get("tabs"), False),
    ]
    return tag(
        "div",
        *(
            tag("div", tag("b", value), tag("span", label), class_="tile bad" if bad else "tile")
            for label, value, bad in tiles
        ),
        class_="tiles",
    )


def _slo_table(document: Mapping[str, Any]) -> Html:
    slo = document.get("slo")
    if not isinstance(slo, Mapping):
        return tag("p", "No SLOs were checked for this run.", class_="note")
    spec = slo.get("spec")
    checks: Sequence[Mapping[str, Any]] = slo.get("checks") or []
    rows = [
        (
            "✓" if check.get("passed") else "✗",
            check.get("name"),
            measured_text(check),
            check.get("required"),
            margin(check, spec) or "–",
        )
        for check in checks
    ]
    classes = ["passed" if check.get("passed") else "failed" for check in checks]
    return table(["", "check", "measured", "required", "margin"], rows, row_classes=classes)


def _settings(document: Mapping[str, Any]) -> Html:
    """What tells this run from others, kept short: the first screen is for the verdict."""
    settings = document.get("settings") or {}
    items: list[tuple[Content, Content]] = [
        ("platform", settings.get("platform")),
        ("design", settings.get("design") or document.get("design")),
        ("secure", _yes_no(settings.get("secure"))),
        ("Kafka", settings.get("kafka")),
        ("warm makers", settings.get("warm_makers")),
    ]
    versions = settings.get("versions") or {}
    if versions:
        items.append(("versions", ", ".join(f"{key} {value}" for key, value in versions.items())))
    return definitions(items)


def _details(document: Mapping[str, Any]) -> Html:
    """The rest of the run's settings: when and where, the SLO spec it was held to, its facts."""
    settings = document.get("settings") or {}
    items: list[tuple[Content, Content]] = [
        ("finished", settings.get("finished_at")),
        ("host", settings.get("host")),
    ]
    slo = document.get("slo")
    spec = slo.get("spec") if isinstance(slo, Mapping) else None
    if isinstance(spec, Mapping):
        items.append(("SLO spec", ", ".join(f"{k}={v}" for k, v in spec.items() if v is not None)))
    for name, facts in _facts_sections(document):
        items.append((name, ", ".join(f"{key}={value}" for key, value in facts.items())))
    return definitions(items)


def _facts_sections(document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Small flat sections a run adds about itself (the demo's own facts, the bench's design)."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key in ("demo", "bench"):
        section = document.get(key)
        if isinstance(section, Mapping):
            flat = {k: v for k, v in section.items() if not isinstance(v, Mapping | list)}
            found.append((key, flat))
    return found


def _faults_table(faults: Sequence[Fault], origin: int | None) -> Html:
    if not faults:
        return tag("p", "No fault was injected in this run.", class_="note")
    rows = [
        (seconds_since(fault.at_ns, origin), fault.kind, fault.what, fault.source)
        for fault in faults
    ]
    classes = ["kill" if fault.is_kill else None for fault in faults]
    return table(["at", "fault", "what", "from"], rows, class_="faults", row_classes=classes)


def _slowest(document: Mapping[str, Any], origin: int | None) -> Html:
    orders = [row for row in document.get("per_order") or [] if isinstance(row, Mapping)]
    if not orders:
        return tag("p", "No order was observed.", class_="note")
    # Incomplete orders first (they never finished), then by latency.
    ranked = sorted(
        orders,
        key=lambda row: (row.get("latency_s") is not None, -(row.get("latency_s") or 0.0)),
    )[:SLOWEST_SHOWN]
    rows = [
        (
            row.get("order_id"),
            seconds_since(row.get("ordered_at_ns"), origin),
            f"{row.get('tabs_received')}/{row.get('tabs_count')}",
            row.get("makers"),
            _seconds(row.get("latency_s")) if row.get("latency_s") is not None else "incomplete",
            _seconds(row.get("made_latency_s")),
            row.get("duplicates"),
        )
        for row in ranked
    ]
    classes = ["failed" if row.get("latency_s") is None else None for row in ranked]
    return table(
        ["order", "placed at", "tabs", "makers", "latency", "made-latency", "duplicate tabs"],
        rows,
        row_classes=classes,
    )


def _problems(document: Mapping[str, Any], origin: int | None) -> Html:
    lost_ids = document.get("lost_order_ids") or []
    items: list[tuple[Content, Content]] = [
        ("dead letters", document.get("dead_letters")),
        ("lost orders", document.get("lost_orders")),
        ("lost order ids (first 20)", ", ".join(str(i) for i in lost_ids) or "none"),
        ("duplicate tabs", document.get("duplicate_tabs")),
        ("invalid orders", document.get("invalid_orders")),
        ("invalid tabs", document.get("invalid_tabs")),
        ("tabs of unseen orders", document.get("orphan_tabs")),
    ]
    return join([definitions(items), _dead_letters(document, origin)])


def _dead_letters(document: Mapping[str, Any], origin: int | None) -> Html:
    """The dead letters read back after the run (only runs that had some read them)."""
    read = document.get("dead_letter_records")
    if not isinstance(read, Mapping):
        return tag(
            "p",
            "Dead letters are orders a maker could not make; a run that has some lists each "
            "one here with its reason, maker, source record and payload.",
            class_="note",
        )
    records = [r for r in read.get("records") or [] if isinstance(r, Mapping)]
    parts: list[Content] = []
    if records:
        total = read.get("total", len(records))
        shown = f"the last {len(records)} of {total}" if total != len(records) else "all"
        parts.append(tag("p", f"Dead letters since the start ({shown}):", class_="note"))
        parts.append(
            table(
                ["failed at", "reason", "maker", "record", "payload"],
                [
                    (
                        seconds_since(r.get("failed_at_ns"), origin),
                        r.get("reason"),
                        r.get("maker"),
                        r.get("source"),
                        tag("code", r.get("payload")),
                    )
                    for r in records
                ],
                class_="letters",
            )
        )
    if read.get("error"):
        parts.append(tag("p", f"Reading the dead-letter topic: {read.get('error')}", class_="note"))
    return join(parts)


def _other_sections(document: Mapping[str, Any]) -> Html:
    parts: list[Content] = []
    chaos = document.get("chaos")
    if isinstance(chaos, Mapping) and chaos.get("outcome"):
        parts.append(tag("p", tag("b", "chaos: "), str(chaos.get("outcome"))))
    figures = document.get("chaos_figures")
    if isinstance(figures, Mapping):
        during = figures.get("during") or {}
        parts.append(
            tag(
                "p",
                tag("b", "fault figures: "),
                f"{figures.get('fault')} x{figures.get('injections')}, "
                f"{during.get('orders')} orders during the fault, {during.get('lost')} lost, "
                f"recovered after {figures.get('recovered_after_s')} s",
            )
        )
    others = sorted(key for key in document if key not in _SHOWN)
    if others:
        parts.append(tag("p", "Also in report.json: ", ", ".join(others), ".", class_="note"))
    if not parts:
        return Html("")
    return join([tag("h2", "Load and chaos"), *parts])


def _diagnostics(diagnostics: Path, directory: Path) -> Html:
    if not diagnostics.is_dir():
        return tag("p", "No diagnostics dump (written when an SLO fails).", class_="note")
    files = sorted(path for path in diagnostics.rglob("*") if path.is_file())
    shown = files[:DIAGNOSTIC_FILES_SHOWN]
    items = [
        tag("li", link(path.relative_to(directory).as_posix(), str(path.relative_to(diagnostics))))
        for path in shown
    ]
    more = len(files) - len(shown)
    tail = [tag("li", f"… and {more} more files")] if more > 0 else []
    return join(
        [
            tag("p", f"{len(files)} files in ", link(f"{DIAGNOSTICS}/", str(diagnostics)), ":"),
            tag("ul", *items, *tail),
        ]
    )


def _seconds(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{value:.2f} s"


def _yes_no(value: Any) -> str:
    return "–" if value is None else ("yes" if value else "no")
