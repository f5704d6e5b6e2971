"""report.html, index.html and their pieces, rendered from report.json documents built here.

Pure and fast: no broker, no browser (tests/test_report_browser.py opens the page in Chromium).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_medpubsub.observer import NS_PER_S, TimelineSample
from pytest_medpubsub.report import ReportUnreadable, junit_properties, render_again, write_report
from pytest_medpubsub.reports.faults import (
    BROKER_KILL,
    CHAOS_ACTION,
    MAKER_KILL,
    fault_record,
    faults_of,
)
from pytest_medpubsub.reports.index_page import write_index
from pytest_medpubsub.reports.margins import margin, measured_text
from pytest_medpubsub.reports.markup import escape, tag
from pytest_medpubsub.reports.run_page import render_run_page
from pytest_medpubsub.reports.scaling import scale_in_s, scale_out_s
from pytest_medpubsub.slo import SloSpec, evaluate
from tests.test_report import T0, a_run, nothing

PLOTS = ("latency.png", "latency-distribution.png", "scaling.png")
SPEC = SloSpec(p95_s=3.0, p99_s=4.0, min_jobs=2, scale_out_within_s=10, scale_in_within_s=5)


def _at(seconds: float) -> int:
    return T0 + int(seconds * NS_PER_S)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(_at(seconds) / NS_PER_S, UTC).isoformat()


def _journal_run(
    func: str, at_s: float, kind: str = "action", output: Any = None
) -> dict[str, Any]:
    return {
        "activity": {"type": kind, "name": func, "provider": {"type": "python", "func": func}},
        "status": "succeeded",
        "start": _iso(at_s),
        "end": _iso(at_s + 0.5),
        "output": output,
    }


def a_failed_run(tmp_path: Path, **extra: Any) -> Path:
    """a_run() held to SPEC (p95 3.80 s > 3 s, one order lost, one tab twice), with a maker kill
    recorded by the harness; returns its directory."""
    summary = a_run()
    directory = tmp_path / "run"
    faults = [fault_record(MAKER_KILL, "medicine-7 (pid 4242)", _at(12))]
    write_report(directory, summary, evaluate(summary, SPEC), {"faults": faults, **extra})
    return directory


# ------------------------------------------------------------------ margins


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"name": "latency_p95", "measured": 3.8}, "0.80 s over, +27 %"),
        ({"name": "latency_p99", "measured": 3.5}, "0.50 s to spare"),
        ({"name": "latency_p95", "measured": 3.0}, "at the bound"),
        ({"name": "lost_orders", "measured": 2}, "2 over"),
        ({"name": "duplicate_tabs", "measured": 0}, "at the bound"),
        ({"name": "peak_makers", "measured": 1}, "1 short, -50 %"),
        ({"name": "orders", "measured": 61}, "60 to spare"),
        ({"name": "scale_out", "measured": 12.5}, "2.50 s over, +25 %"),
        ({"name": "scale_in", "measured": 3.0}, "2.00 s to spare"),
        ({"name": "scale_out", "measured": "never reached (peak 1 makers)"}, ""),
        ({"name": "latency_p95", "measured": "no completed order"}, ""),
        ({"name": "someone_elses_check", "measured": 3}, ""),
    ],
)
def test_margin_says_by_how_much_a_check_passed_or_failed(
    check: dict[str, Any], expected: str
) -> None:
    assert margin(check, SPEC.model_dump()) == expected


def test_measured_text_is_the_terminal_table_s() -> None:
    result = evaluate(a_run(), SPEC)
    for check in result.checks:
        assert measured_text(check.model_dump(mode="json")) == check.measured_text(), check.name


# ------------------------------------------------------------------ escaping


def test_markup_escapes_everything_it_did_not_build() -> None:
    assert (
        escape('<script>alert("x")</script>') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    )
    assert tag("td", "<b>", title='"quoted"') == '<td title="&quot;quoted&quot;">&lt;b&gt;</td>'
    assert tag("td", tag("b", "x")) == "<td><b>x</b></td>"
    assert tag("img", src="data:,") == '<img src="data:,">'


# ------------------------------------------------------------------ the run page


def test_a_failed_run_page_names_the_failed_checks_and_by_how_much(tmp_path: Path) -> None:
    directory = a_failed_run(tmp_path)
    page = (directory / "report.html").read_text()
    verdict = re.search(r'<div class="verdict failed">(.*?)</div>', page, re.S)
    assert verdict is not None, "no failed verdict banner"
    assert "SLO FAILED" in verdict.group(1)
    assert "latency_p95: 3.80 s, required ≤ 3 s (0.80 s over, +27 %)" in verdict.group(1)
    assert "lost_orders: 1, required ≤ 0 (1 over)" in verdict.group(1)
    assert "latency_p99" not in verdict.group(1)  # it passed
    rows = re.findall(r'<tr class="(passed|failed)"><td>[✓✗]</td><td>(\w+)</td>', page)
    assert ("failed", "latency_p95") in rows
    assert ("passed", "latency_p99") in rows
    assert {name for _, name in rows} >= {"orders", "lost_orders", "duplicate_tabs", "scale_in"}


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = (a_failed_run(tmp_path) / "report.html").read_text()
    images = re.findall(r'<img src="([^"]*)"', page)
    assert len(images) == len(PLOTS)
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in images)
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "a resource outside the file"
    assert '<link rel="stylesheet"' not in page


def test_the_page_shows_faults_slowest_orders_problems_and_settings(tmp_path: Path) -> None:
    settings = {
        "name": "scenarios/test_x.py::test_y",
        "platform": "local",
        "design": "dispatcher",
        "secure": True,
        "versions": {"kafka": "4.3.1"},
    }
    directory = a_failed_run(tmp_path, settings=settings)
    page = (directory / "report.html").read_text()
    assert "scenarios/test_x.py::test_y" in page
    assert "<th>design</th><td>dispatcher</td>" in page
    assert "<th>secure</th><td>yes</td>" in page
    assert "kafka 4.3.1" in page
    # The kill 12 s after the start, in the fault table.
    assert "<td>+12.0 s</td><td>maker_kill</td><td>medicine-7 (pid 4242)</td>" in page
    # The incomplete order leads the slowest orders, then the slowest complete one (3.80 s).
    slowest = page.split("Slowest orders", 1)[1]
    assert slowest.index("order-60") < slowest.index("3.80 s")
    assert "incomplete" in slowest
    assert "<th>dead letters</th><td>2</td>" in page
    assert "order-60" in page.split("lost order ids", 1)[1]


def test_run_data_is_escaped_on_the_page(tmp_path: Path) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    directory = a_failed_run(tmp_path, settings={"name": hostile, "platform": hostile})
    page = (directory / "report.html").read_text()
    assert hostile not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_diagnostics_are_linked_when_there_are_some(tmp_path: Path) -> None:
    directory = a_failed_run(tmp_path)
    assert "No diagnostics dump" in (directory / "report.html").read_text()
    (directory / "diagnostics" / "logs").mkdir(parents=True)
    (directory / "diagnostics" / "logs" / "medicine-7.log").write_text("killed\n")
    (directory / "diagnostics" / "kafka-server.log").write_text("ok\n")
    render_again(directory)
    page = (directory / "report.html").read_text()
    banner = page.split('class="verdict failed"', 1)[1].split("</div>", 1)[0]
    assert '<a href="diagnostics/">diagnostics/</a>' in banner
    assert '<a href="diagnostics/logs/medicine-7.log">logs/medicine-7.log</a>' in page
    assert '<a href="diagnostics/kafka-server.log">kafka-server.log</a>' in page


def test_a_run_without_slo_or_orders_still_renders(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    write_report(directory, nothing(), None)
    page = (directory / "report.html").read_text()
    assert '<div class="verdict none"><strong>no SLO</strong>' in page
    assert "No order was observed." in page
    assert "No fault was injected in this run." in page


# ------------------------------------------------------------------ faults


def test_faults_come_from_the_harness_and_from_chaos_journals_in_time_order() -> None:
    document = {
        "faults": [fault_record(MAKER_KILL, "medicine-1 (pid 10)", _at(30)), {"bad": "entry"}],
        "chaos": {
            "run": [
                _journal_run("start_load", 1),
                _journal_run("orders_are_delivered", 2, kind="probe"),
                _journal_run("kill_broker", 10, output={"pid": 99}),
            ],
            "rollbacks": [_journal_run("stop_load", 40)],
        },
        "chaos_journal": {"run": [_journal_run("kill_makers", 20, output=["medicine-2 (pid 11)"])]},
    }
    faults = faults_of(document)
    assert [(f.kind, round((f.at_ns - T0) / NS_PER_S)) for f in faults] == [
        (CHAOS_ACTION, 1),
        (BROKER_KILL, 10),
        (MAKER_KILL, 20),
        (MAKER_KILL, 30),
        (CHAOS_ACTION, 40),
    ]
    assert faults[1].what == "kill_broker (succeeded): pid=99"
    assert faults[2].what == "kill_makers (succeeded): medicine-2 (pid 11)"
    assert faults[4].source == "chaos rollback"
    assert [f.is_kill for f in faults] == [False, True, True, True, False]


# ------------------------------------------------------------------ scale-out / scale-in seconds


def _timeline(points: list[tuple[int, int, int]]) -> list[TimelineSample]:
    return [
        TimelineSample(t_ns=_at(s), patients=p, jobs=j, lag=0, orders_per_s=0.0, tabs_per_s=0.0)
        for s, p, j in points
    ]


@pytest.mark.parametrize(
    ("points", "warm", "out_s", "in_s"),
    [
        # step at 2 s, peak 3 makers at 5 s; load ends at 9 s, back to 1 warm maker at 12 s
        (
            [(0, 0, 1), (2, 2, 1), (4, 2, 2), (5, 2, 3), (9, 0, 3), (10, 0, 2), (12, 0, 1)],
            1,
            3.0,
            3.0,
        ),
        # the same run held to no warm floor: still one maker at the end, so no scale-in figure
        ([(0, 0, 1), (2, 2, 1), (5, 2, 3), (9, 0, 3), (12, 0, 1)], 0, 3.0, None),
        # a bounce back above the floor counts: the last drop is at 14 s
        ([(0, 0, 0), (1, 1, 2), (5, 0, 2), (7, 0, 0), (9, 0, 1), (14, 0, 0)], 0, 0.0, 9.0),
        # never loaded: neither figure
        ([(0, 0, 0), (1, 0, 0)], 0, None, None),
        # still loaded at the end: scale-out only
        ([(0, 0, 0), (1, 3, 0), (3, 3, 4)], 0, 2.0, None),
    ],
)
def test_scale_out_and_in_seconds(
    points: list[tuple[int, int, int]], warm: int, out_s: float | None, in_s: float | None
) -> None:
    timeline = _timeline(points)
    assert scale_out_s(timeline) == out_s
    assert scale_in_s(timeline, warm) == in_s


def test_junit_properties_tell_runs_apart() -> None:
    summary = a_run()
    settings = {"design": "dispatcher", "platform": "kind", "secure": False, "warm_makers": 0}
    properties = dict(junit_properties(summary, evaluate(summary, SloSpec()), settings))
    assert (properties["design"], properties["platform"], properties["secure"]) == (
        "dispatcher",
        "kind",
        False,
    )
    # No scale SLO: the figures are computed (a_run: the peak of 4 makers 4 s after the step,
    # back to 0 makers 3 s after the load's end).
    assert (properties["scale_out_s"], properties["scale_in_s"]) == (4.0, 3.0)
    # With the SLO checks, their figures (the same numbers as in the SLO table).
    with_checks = evaluate(summary, SloSpec(min_jobs=2, scale_out_within_s=10, scale_in_within_s=5))
    measured = {c.name: c.measured for c in with_checks.checks}
    properties = dict(junit_properties(summary, with_checks, settings))
    assert properties["scale_out_s"] == measured["scale_out"] == 2.0  # 2 makers, not the peak
    assert properties["scale_in_s"] == measured["scale_in"]
    # A check that measured no number reports none (rather than a differently defined figure).
    never = evaluate(summary, SloSpec(min_jobs=9, scale_out_within_s=10))
    assert dict(junit_properties(summary, never, settings))["scale_out_s"] is None


# ------------------------------------------------------------------ index, re-rendering, the CLI


def test_the_index_lists_every_run_with_its_verdict_and_links_it(tmp_path: Path) -> None:
    failed = a_failed_run(tmp_path)
    passed = tmp_path / "other" / "passed"
    summary = a_run()
    write_report(passed, summary, evaluate(summary, SloSpec(p95_s=5, max_lost=1, max_duplicates=1)))
    index = write_index(
        tmp_path,
        [("test_fails", failed / "report.json"), ("test_holds", passed / "report.json")],
        "s",
    )
    page = index.read_text()
    assert "1 of 2 FAILED" in page
    assert '<a href="run/report.html">test_fails</a>' in page
    assert '<a href="other/passed/report.html">test_holds</a>' in page
    failed_row = page.split("test_fails", 1)[1].split("</tr>", 1)[0]
    assert "latency_p95: 3.80 s, required ≤ 3 s (0.80 s over, +27 %)" in failed_row
    assert "<td>3.80 s</td>" in failed_row  # p95 among the headline figures


def test_render_again_draws_page_and_missing_plots_from_report_json_alone(tmp_path: Path) -> None:
    original = a_failed_run(tmp_path)
    copy = tmp_path / "copied-from-ci"
    copy.mkdir()
    (copy / "report.json").write_bytes((original / "report.json").read_bytes())
    page = render_again(copy)
    assert page == copy / "report.html"
    for name in PLOTS:
        assert (copy / name).stat().st_size > 10_000
    again = render_run_page(json.loads((copy / "report.json").read_text()), copy)
    assert page.read_text() == again


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "has no report.json"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"orders": 3}', "is not a medpubsub report (missing "),
    ],
)
def test_render_again_refuses_what_it_cannot_draw_in_one_sentence(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    with pytest.raises(ReportUnreadable, match=re.escape(message)):
        render_again(tmp_path)


@pytest.mark.slow  # two interpreters start and import matplotlib: seconds
def test_medpubsub_report_prints_the_page_or_one_line_and_exit_2(tmp_path: Path) -> None:
    directory = a_failed_run(tmp_path)
    (directory / "report.html").unlink()
    command = [sys.executable, "-m", "medpubsub", "report"]
    good = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == str(directory / "report.html")
    assert (directory / "report.html").is_file()

    bad = subprocess.run(
        [*command, str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"medpubsub report: {tmp_path / 'nowhere'} has no report.json"
    ]


def test_dead_letters_read_back_are_listed_escaped_with_any_reading_problem(tmp_path: Path) -> None:
    letters = {
        "records": [
            {
                "failed_at_ns": _at(5),
                "reason": "not JSON: Expecting value",
                "maker": "vm-1-abc",
                "source": "tabs.orders[3]@17",
                "payload": "<b>bold</b>",
            }
        ],
        "total": 3,
        "error": "stopped after 20 s: partitions [4] of tabs.dlq not read to their end",
    }
    page = (a_failed_run(tmp_path, dead_letter_records=letters) / "report.html").read_text()
    table_html = page.split('<table class="letters">', 1)[1].split("</table>", 1)[0]
    assert "<td>+5.0 s</td><td>not JSON: Expecting value</td><td>vm-1-abc</td>" in table_html
    assert "<td>tabs.orders[3]@17</td><td><code>&lt;b&gt;bold&lt;/b&gt;</code></td>" in table_html
    assert "(the last 1 of 3)" in page
    assert "Reading the dead-letter topic: stopped after 20 s" in page
    assert "dead_letter_records" not in page  # shown, so not listed among the other sections
