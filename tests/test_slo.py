"""SLO arithmetic, table-driven: every check passes at its boundary and fails just past it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_medpubsub.observer import (
    NS_PER_S,
    OrderRow,
    Summary,
    TimelineSample,
    latency_stats,
    percentile,
    summarize,
)
from pytest_medpubsub.slo import SloResult, SloSpec, evaluate, load_end_ns, load_step_ns

T0 = 1_800_000_000 * NS_PER_S


def row(latency_s: float | None, at_s: float = 0.0, duplicates: int = 0) -> OrderRow:
    return OrderRow(
        order_id=f"order-{at_s}-{latency_s}",
        ordered_at_ns=T0 + int(at_s * NS_PER_S),
        tabs_count=2,
        tabs_received=2 if latency_s is not None else 1,
        duplicates=duplicates,
        makers=1,
        latency_s=latency_s,
        made_latency_s=None if latency_s is None else latency_s - 0.1,
    )


def timeline(*samples: tuple[float, int | None, int | None]) -> list[TimelineSample]:
    """Samples from (seconds, patients, jobs)."""
    return [
        TimelineSample(
            t_ns=T0 + int(t_s * NS_PER_S),
            patients=patients,
            jobs=jobs,
            lag=None if jobs is None else 0,
            orders_per_s=float(patients or 0),
            tabs_per_s=15.5 * (patients or 0),
        )
        for t_s, patients, jobs in samples
    ]


def summary_of(
    latencies: Sequence[float | None] = (3.0,),
    duplicates: int = 0,
    samples: Sequence[TimelineSample] = (),
) -> Summary:
    """A finished run's summary: every incomplete order (None latency) is lost."""
    rows = [row(latency, at_s=index) for index, latency in enumerate(latencies)]
    if duplicates and rows:
        rows[0] = row(latencies[0], duplicates=duplicates)
    return summarize(rows, samples, final=True, observed_at_ns=T0 + 100 * NS_PER_S)


def check(result: SloResult, name: str) -> tuple[object, bool]:
    (found,) = [c for c in result.checks if c.name == name]
    return found.measured, found.passed


# ------------------------------------------------------------------ percentiles


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        pytest.param([float(v) for v in range(1, 11)], 50, 5.0, id="p50-of-1..10"),
        pytest.param([float(v) for v in range(1, 11)], 90, 9.0, id="p90-of-1..10"),
        pytest.param([float(v) for v in range(1, 11)], 95, 10.0, id="p95-of-1..10-rounds-up"),
        pytest.param([float(v) for v in range(1, 101)], 95, 95.0, id="p95-of-1..100"),
        pytest.param([float(v) for v in range(1, 101)], 99, 99.0, id="p99-of-1..100"),
        pytest.param([float(v) for v in range(1, 11)], 10, 1.0, id="p10-is-the-smallest"),
        pytest.param([float(v) for v in range(1, 11)], 100, 10.0, id="p100-is-the-max"),
        pytest.param([3.0], 99, 3.0, id="one-value"),
        pytest.param([5.0, 1.0, 3.0], 50, 3.0, id="unsorted-input"),
        pytest.param([float(v) for v in range(1, 101)], 7, 7.0, id="no-float-rounding-up"),
        pytest.param([], 95, None, id="no-values"),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_rejects_a_rank_outside_0_to_100(p: float) -> None:
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile([1.0], p)


def test_latency_stats() -> None:
    assert latency_stats([]) is None
    stats = latency_stats([4.0, 2.0, 3.0])
    assert stats is not None
    assert (stats.p50, stats.p95, stats.p99, stats.max) == (3.0, 4.0, 4.0, 4.0)


# ------------------------------------------------------------------ each check at its boundary

STEP = timeline((0, 0, 0), (10, 5, 0), (20, 5, 2), (40, 5, 3), (41, 5, 4))  # step at 10 s
RAMP_DOWN = timeline((0, 5, 6), (10, 0, 6), (20, 0, 2), (30, 0, 0), (40, 0, 0))  # end at 10 s
BOUNDARY_CASES = [
    # (spec keywords, summary, check name, measured, passed)
    ({}, summary_of([1.0]), "orders", 1, True),
    ({"min_orders": 2}, summary_of([1.0]), "orders", 1, False),
    ({}, summary_of([]), "orders", 0, False),
    ({"p95_s": 5.0}, summary_of([5.0] * 20), "latency_p95", 5.0, True),
    ({"p95_s": 5.0}, summary_of([5.0] * 19 + [5.01]), "latency_p95", 5.0, True),
    ({"p95_s": 5.0}, summary_of([5.0] * 18 + [5.01] * 2), "latency_p95", 5.01, False),
    ({"p99_s": 8.0}, summary_of([2.0] * 98 + [8.0] * 2), "latency_p99", 8.0, True),
    ({"p99_s": 8.0}, summary_of([2.0] * 98 + [8.01] * 2), "latency_p99", 8.01, False),
    ({}, summary_of([]), "latency_p95", "no completed order", False),
    ({}, summary_of([None]), "latency_p99", "no completed order", False),
    ({"max_lost": 0}, summary_of([2.0]), "lost_orders", 0, True),
    ({"max_lost": 0}, summary_of([2.0, None]), "lost_orders", 1, False),
    ({"max_lost": 1}, summary_of([2.0, None]), "lost_orders", 1, True),
    ({"max_duplicates": 0}, summary_of([2.0]), "duplicate_tabs", 0, True),
    ({"max_duplicates": 0}, summary_of([2.0], duplicates=1), "duplicate_tabs", 1, False),
    ({"max_duplicates": 1}, summary_of([2.0], duplicates=1), "duplicate_tabs", 1, True),
    ({"min_jobs": 3}, summary_of(samples=STEP), "peak_makers", 4, True),
    ({"min_jobs": 5}, summary_of(samples=STEP), "peak_makers", 4, False),
    ({"min_jobs": 1}, summary_of(), "peak_makers", "no job samples", False),
    ({"min_jobs": 3, "scale_out_within_s": 30}, summary_of(samples=STEP), "scale_out", 30.0, True),
    ({"min_jobs": 3, "scale_out_within_s": 29}, summary_of(samples=STEP), "scale_out", 30.0, False),
    ({"min_jobs": 2, "scale_out_within_s": 10}, summary_of(samples=STEP), "scale_out", 10.0, True),
    ({"scale_in_within_s": 20}, summary_of(samples=RAMP_DOWN), "scale_in", 20.0, True),
    ({"scale_in_within_s": 19.9}, summary_of(samples=RAMP_DOWN), "scale_in", 20.0, False),
]


@pytest.mark.parametrize(
    ("keywords", "summary", "name", "measured", "passed"),
    [
        pytest.param(*case, id=f"{case[2]}-{'pass' if case[4] else 'fail'}-{index}")
        for index, case in enumerate(BOUNDARY_CASES)
    ],
)
def test_each_check_at_its_boundary(
    keywords: dict[str, Any], summary: Summary, name: str, measured: object, passed: bool
) -> None:
    result = evaluate(summary, SloSpec(**keywords))
    assert check(result, name) == (measured, passed)
    assert result.passed == all(c.passed for c in result.checks)


def test_a_check_switched_off_is_not_reported() -> None:
    result = evaluate(summary_of([9.0]), SloSpec(p95_s=None, p99_s=None))
    assert [c.name for c in result.checks] == ["orders", "lost_orders", "duplicate_tabs"]
    assert result.passed


def test_a_run_without_orders_fails_every_default_slo_it_cannot_measure() -> None:
    result = evaluate(summary_of([]), SloSpec())
    assert not result.passed
    assert {c.name for c in result.failed_checks()} == {"orders", "latency_p95", "latency_p99"}


# ------------------------------------------------------------------ scale-out and scale-in


@pytest.mark.parametrize(
    ("samples", "step_s", "end_s"),
    [
        pytest.param(
            timeline((0, 1, 0), (5, 1, 2), (10, 5, 2), (15, 5, 9), (20, 0, 9)),
            10,
            20,
            id="ramp-1-to-5-then-stop",
        ),
        pytest.param(
            timeline((0, 5, 0), (5, 5, 3), (10, 0, 3)), 0, 10, id="loaded-from-the-first-sample"
        ),
        pytest.param(
            timeline((0, 0, 0), (5, 2, 1), (10, 0, 1), (15, 3, 1), (20, 0, 0)),
            15,
            10,
            id="the-end-is-the-first-drop-to-zero",
        ),
        pytest.param(timeline((0, 0, 0), (5, 0, 0)), None, None, id="never-loaded"),
        pytest.param(
            timeline((0, None, None), (5, 2, 1), (10, None, None), (15, 0, 0)),
            5,
            15,
            id="unsampled-seconds-are-skipped",
        ),
        pytest.param(timeline((0, 3, 1), (5, 3, 2)), 0, None, id="load-never-ended"),
        pytest.param([], None, None, id="no-samples"),
    ],
)
def test_load_step_and_end_from_the_timeline(
    samples: list[TimelineSample], step_s: float | None, end_s: float | None
) -> None:
    def at(seconds: float | None) -> int | None:
        return None if seconds is None else T0 + int(seconds * NS_PER_S)

    assert (load_step_ns(samples), load_end_ns(samples)) == (at(step_s), at(end_s))


@pytest.mark.parametrize(
    ("samples", "measured", "passed"),
    [
        pytest.param(
            timeline((0, 5, 1), (10, 0, 1), (12, 0, 0), (14, 0, 1), (16, 0, 0)),
            6.0,
            True,
            id="a-late-maker-restarts-the-clock",
        ),
        pytest.param(
            timeline((0, 5, 1), (10, 0, 0), (12, 0, 0)), 0.0, True, id="already-at-zero-at-the-end"
        ),
        pytest.param(
            timeline((0, 5, 1), (10, 0, 2), (15, 0, 1)),
            "1 makers still running 5.0 s after",
            False,
            id="makers-left-at-the-end",
        ),
        pytest.param(
            timeline((0, 5, 1), (10, 5, 0)),
            "the load never ended (patients never back to 0)",
            False,
            id="no-load-end",
        ),
        pytest.param(
            timeline((0, 5, 1), (10, 0, None)),
            "no job samples after the load's end",
            False,
            id="no-job-samples",
        ),
    ],
)
def test_scale_in_counts_from_the_load_end_to_the_last_maker_gone(
    samples: list[TimelineSample], measured: object, passed: bool
) -> None:
    result = evaluate(summary_of(samples=samples), SloSpec(scale_in_within_s=10))
    assert check(result, "scale_in") == (measured, passed)


@pytest.mark.parametrize(
    ("samples", "measured"),
    [
        pytest.param(
            timeline((0, 5, 0), (10, 5, 2)), "never reached (peak 2 makers)", id="too-few-makers"
        ),
        pytest.param(
            timeline((0, 0, 3), (10, 0, 3)),
            "no load step (patients never above 0)",
            id="no-patients",
        ),
        pytest.param(
            timeline((0, 5, 3), (10, 1, 3), (20, 5, 9)),
            0.0,
            id="the-step-is-the-first-sample-at-the-peak",
        ),
    ],
)
def test_scale_out_counts_from_the_first_sample_at_the_peak(
    samples: list[TimelineSample], measured: object
) -> None:
    result = evaluate(summary_of(samples=samples), SloSpec(min_jobs=3, scale_out_within_s=5))
    assert check(result, "scale_out") == (measured, measured == 0.0)


# ------------------------------------------------------------------ messages and markers


def test_failure_message_tabulates_every_check() -> None:
    result = evaluate(summary_of([6.0, 2.0, None]), SloSpec(p95_s=5, p99_s=8))
    message = result.failure_message()
    lines = message.splitlines()
    assert lines[0] == "SLOs failed: latency_p95, lost_orders"
    assert lines[1].split() == ["check", "measured", "required"]
    table = {line.split()[1]: line for line in lines[2:]}
    assert table.keys() == {"orders", "latency_p95", "latency_p99", "lost_orders", "duplicate_tabs"}
    assert table["latency_p95"].startswith("✗")
    assert "6.00 s" in table["latency_p95"]
    assert "≤ 5 s" in table["latency_p95"]
    assert table["latency_p99"].startswith("✓")
    assert table["lost_orders"].split()[:4] == ["✗", "lost_orders", "1", "≤"]


def test_a_passing_result_says_so() -> None:
    message = evaluate(summary_of([2.5]), SloSpec()).failure_message()
    assert message.startswith("SLOs met")
    assert "✗" not in message


def test_the_result_json_has_the_report_keys() -> None:
    document = evaluate(summary_of([2.5]), SloSpec()).to_dict()
    assert document["passed"] is True
    assert {tuple(c) for c in document["checks"]} == {("name", "measured", "required", "passed")}
    assert document["checks"][1] == {
        "name": "latency_p95",
        "measured": 2.5,
        "required": "≤ 3 s",
        "passed": True,
    }


def test_marker_keywords_override_the_defaults() -> None:
    defaults = SloSpec(p95_s=6.0, max_lost=2)
    spec = SloSpec.from_marker((), {"p95_s": 4, "min_jobs": 3, "scale_out_within_s": 30}, defaults)
    assert spec == SloSpec(p95_s=4.0, max_lost=2, min_jobs=3, scale_out_within_s=30.0)
    assert SloSpec.from_marker((), {}, None) == SloSpec()
    assert SloSpec.from_marker((), {"p99_s": None}, defaults).p99_s is None


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        pytest.param(
            (),
            {"p95": 4},
            r"does not know p95; accepted keywords: p95_s, p99_s, ",
            id="unknown-keyword",
        ),
        pytest.param((4,), {}, r"takes keywords only", id="positional"),
        pytest.param((), {"p95_s": -1}, r"p95_s=-1 is invalid", id="negative-latency"),
        pytest.param((), {"max_lost": "many"}, r"max_lost='many' is invalid", id="not-a-number"),
        pytest.param(
            (),
            {"scale_out_within_s": 30},
            r"scale_out_within_s needs min_jobs",
            id="scale-out-without-count",
        ),
    ],
)
def test_marker_mistakes_are_one_sentence(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        SloSpec.from_marker(args, kwargs)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("warm_makers", "measured", "passed"),
    [
        (2, 6.0, True),  # back to the floor 6 s after the load's end, and it stays there
        (3, 3.0, True),
        (0, "2 makers still running 12.0 s after", False),  # the floor is not zero
    ],
)
def test_scale_in_ends_at_the_warm_floor(warm_makers: int, measured: object, passed: bool) -> None:
    samples = timeline((0, 3, 6), (10, 0, 6), (13, 0, 3), (16, 0, 2), (22, 0, 2))
    result = evaluate(summary_of(samples=samples), SloSpec(scale_in_within_s=10), warm_makers)

    assert check(result, "scale_in") == (measured, passed)


@pytest.mark.parametrize(
    ("spec", "extra_s", "expected"),
    [
        (SloSpec(), 0.0, (3.0, 4.0)),
        (SloSpec(), 3.0, (6.0, 7.0)),
        (SloSpec(p95_s=25.0, p99_s=None), 3.0, (28.0, None)),  # a check off stays off
        (SloSpec(p95_s=None, p99_s=None), 2.0, (None, None)),
    ],
)
def test_an_allowance_moves_only_the_latency_bounds(
    spec: SloSpec, extra_s: float, expected: tuple[float | None, float | None]
) -> None:
    allowed = spec.allowing(extra_s)
    assert (allowed.p95_s, allowed.p99_s) == expected
    assert allowed.model_dump(exclude={"p95_s", "p99_s"}) == spec.model_dump(
        exclude={"p95_s", "p99_s"}
    )
