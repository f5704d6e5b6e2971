"""A failed run's message under the SLO table: the slowest orders, and how busy the machine was."""

from __future__ import annotations

from pytest_medpubsub.host_cpu import CpuShare
from pytest_medpubsub.observer import NS_PER_S, OrderRow, Summary, summarize
from pytest_medpubsub.reports.slowest import failure_context, slowest_orders
from pytest_medpubsub.slo import SloSpec, evaluate

T0 = 1_800_000_000 * NS_PER_S
BUSY = CpuShare(busy=0.97, steal=0.2, iowait=0.0, cpus=2, seconds=60.0)


def order(at_s: float, latency_s: float | None, made_s: float | None = None) -> OrderRow:
    return OrderRow(
        order_id=f"o{at_s:g}",
        ordered_at_ns=T0 + int(at_s * NS_PER_S),
        tabs_count=3,
        tabs_received=3 if latency_s is not None else 0,
        duplicates=0,
        makers=1,
        latency_s=latency_s,
        made_latency_s=made_s,
    )


def run(*rows: OrderRow, since_s: float | None = 0.0) -> Summary:
    since = None if since_s is None else T0 + int(since_s * NS_PER_S)
    return summarize(list(rows), [], final=True, observed_at_ns=T0, since_ns=since)


def test_the_slowest_come_first_with_when_they_were_placed() -> None:
    summary = run(order(1, 2.1, 2.0), order(5, 11.4, 2.0), order(6, 9.0), order(7, None))
    assert slowest_orders(summary, count=2) == [
        "placed at +5.0 s: delivered after 11.40 s, last tab made after 2.00 s; "
        "3 tabs, 1 maker(s), order o5",
        "placed at +6.0 s: delivered after 9.00 s, last tab made after ?; "
        "3 tabs, 1 maker(s), order o6",
    ]


def test_without_a_mark_times_count_from_the_first_order() -> None:
    summary = run(order(3, 2.5), order(4, 2.0), since_s=None)
    assert slowest_orders(summary)[0].startswith("placed at +0.0 s: delivered after 2.50 s")


def test_no_complete_order_lists_nothing() -> None:
    assert slowest_orders(run(order(1, None))) == []


def test_a_missed_latency_bound_lists_the_slowest_orders_and_the_machine() -> None:
    summary = run(order(1, 2.1), order(2, 12.0))
    result = evaluate(summary, SloSpec(p95_s=3.0, p99_s=4.0))
    lines = failure_context(summary, result, BUSY).splitlines()
    assert lines[0] == "the 2 slowest orders:"
    assert lines[1].startswith("  placed at +2.0 s: delivered after 12.00 s")
    assert lines[-1] == (
        "during the run the machine was 97 % busy over 60 s (2 CPUs; steal 20 %, iowait 0 %)"
    )


def test_other_failures_name_only_the_machine() -> None:
    summary = run(order(1, 2.1), order(2, None))  # one lost order, latency fine
    result = evaluate(summary, SloSpec(p95_s=3.0, p99_s=4.0, max_lost=0))
    assert not result.passed
    assert failure_context(summary, result, None) == ""
    assert failure_context(summary, result, BUSY).startswith("during the run the machine")
