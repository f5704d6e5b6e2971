"""report.json and the plots, from synthetic summaries (full, single-point and empty)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from pytest_medpubsub.observer import NS_PER_S, OrderRow, Summary, TimelineSample, summarize
from pytest_medpubsub.plots import rolling_percentile
from pytest_medpubsub.report import junit_properties, report_document, write_report
from pytest_medpubsub.slo import SloResult, SloSpec, evaluate

T0 = 1_800_000_000 * NS_PER_S
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("latency.png", "latency-distribution.png", "scaling.png")
DESIGN_KEYS = {
    "orders",
    "tabs",
    "complete_orders",
    "lost_orders",
    "duplicate_tabs",
    "dead_letters",
    "latency_s",
    "max_jobs",
    "timeline",
    "slo",
}


def _row(index: int, latency_s: float | None) -> OrderRow:
    return OrderRow(
        order_id=f"order-{index}",
        ordered_at_ns=T0 + index * NS_PER_S // 2,
        tabs_count=4,
        tabs_received=4 if latency_s is not None else 2,
        duplicates=1 if index == 3 else 0,
        makers=1,
        latency_s=latency_s,
        made_latency_s=None if latency_s is None else latency_s - 0.2,
    )


def _sample(second: int, patients: int, jobs: int) -> TimelineSample:
    return TimelineSample(
        t_ns=T0 + second * NS_PER_S,
        patients=patients,
        jobs=jobs,
        lag=jobs // 2,
        orders_per_s=float(patients),
        tabs_per_s=15.5 * patients,
    )


def a_run() -> Summary:
    """40 s of load: 2 patients, then none; one order never completed."""
    rows = [_row(i, 2.0 + (i % 7) * 0.3) for i in range(60)] + [_row(60, None)]
    samples = [_sample(s, 2 if s < 30 else 0, min(s, 4) if s < 33 else 0) for s in range(40)]
    return summarize(
        rows, samples, dead_letters=2, final=True, observed_at_ns=T0 + 40 * NS_PER_S, makers=4
    )


def one_order() -> Summary:
    return summarize([_row(0, 2.4)], [_sample(1, 1, 1)], final=True)


def nothing() -> Summary:
    return summarize([], [], final=True)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_json_has_the_design_keys_and_values(tmp_path: Path) -> None:
    summary = a_run()
    slo = evaluate(summary, SloSpec(p95_s=5.0))
    path = write_report(tmp_path / "run", summary, slo, extra={"locust": {"requests": 61}})

    assert path == tmp_path / "run" / "report.json"
    report = json.loads(path.read_text())
    assert report.keys() >= DESIGN_KEYS | {"locust"}
    assert (report["orders"], report["complete_orders"], report["lost_orders"]) == (61, 60, 1)
    assert (report["tabs"], report["duplicate_tabs"], report["dead_letters"]) == (242, 1, 2)
    assert report["max_jobs"] == 4
    assert report["latency_s"].keys() == {"p50", "p95", "p99", "max"}
    assert report["latency_s"]["max"] == pytest.approx(3.8)
    assert len(report["timeline"]) == 40
    assert report["timeline"][0].keys() >= {"patients", "jobs", "lag", "tabs_per_s"}
    assert report["slo"]["passed"] is False  # the lost order
    assert report["slo"]["checks"][0] == {
        "name": "orders",
        "measured": 61,
        "required": "≥ 1",
        "passed": True,
    }
    assert report["locust"] == {"requests": 61}


@pytest.mark.parametrize("summary", [a_run(), one_order(), nothing()], ids=["run", "one", "empty"])
def test_plots_are_png_files_for_any_summary(tmp_path: Path, summary: Summary) -> None:
    slo = evaluate(summary, SloSpec())
    write_report(tmp_path, summary, slo)
    for name in PLOTS:
        width, height = png_size(tmp_path / name)
        assert width >= 800
        assert height >= 400


def test_an_empty_report_has_nulls_not_gaps(tmp_path: Path) -> None:
    report = json.loads(write_report(tmp_path, nothing(), None).read_text())
    assert report.keys() >= DESIGN_KEYS
    assert (report["orders"], report["latency_s"], report["max_jobs"], report["slo"]) == (
        0,
        None,
        None,
        None,
    )
    assert report["timeline"] == []


def test_extra_sections_may_not_replace_the_figures() -> None:
    with pytest.raises(ValueError, match="would overwrite orders"):
        report_document(one_order(), None, {"orders": 0})


def test_junit_properties_name_the_headline_figures() -> None:
    summary = a_run()
    slo: SloResult = evaluate(summary, SloSpec(p95_s=5.0))
    properties = dict(junit_properties(summary, slo))
    assert properties["orders"] == 61
    assert properties["lost_orders"] == 1
    assert properties["latency_p95_s"] == 3.8
    assert properties["slo_passed"] is False
    assert properties["slo_lost_orders"] == "✗ 1 (required ≤ 0)"
    assert properties["slo_latency_p95"] == "✓ 3.80 s (required ≤ 5 s)"
    assert dict(junit_properties(nothing(), None))["latency_p50_s"] is None


def test_rolling_percentile_uses_a_trailing_window() -> None:
    times = [0.0, 1.0, 2.0, 12.0, 13.0]
    values = [9.0, 2.0, 3.0, 4.0, 5.0]
    assert rolling_percentile(times, values, 95, window_s=10.0) == [9.0, 9.0, 9.0, 4.0, 5.0]
    assert rolling_percentile([], [], 95, window_s=10.0) == []
    assert not any(math.isnan(v) for v in rolling_percentile([1.0], [2.0], 50, 10.0))
