"""The observer's pure parts as tables: the per-order ledger fed by hand (no Kafka), the
statistics of a window, and when a run has drained. The real-Kafka side of the same rules is
tests/test_observer.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from medpubsub.messages import Order, Tab
from pytest_medpubsub.observing.drain import DrainState
from pytest_medpubsub.observing.figures import (
    NS_PER_S,
    OrderRow,
    TimelineSample,
    latency_stats,
    percentile,
    summarize,
    throughput,
)
from pytest_medpubsub.observing.ledger import Ledger, Missing

S = NS_PER_S
T0 = 1_000 * S  # an order placed at 1000 s (wall clock)


def oid(name: str) -> str:
    """A stable order id (a UUID, as the contract wants) for a short name in the tables."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, name))


def order(name: str, tabs: int, at_s: float = 0.0) -> Order:
    return Order(
        order_id=oid(name), patient_id="p", tabs_count=tabs, ordered_at_ns=T0 + int(at_s * S)
    )


def tab(name: str, index: int, tabs: int, maker: str = "m1", made_s: float = 2.0) -> Tab:
    order_id = oid(name)
    return Tab(
        tab_id=Tab.tab_id_for(order_id, index),
        order_id=order_id,
        patient_id="p",
        index=index,
        tabs_count=tabs,
        ordered_at_ns=T0,
        made_at_ns=T0 + int(made_s * S),
        maker=maker,
    )


@dataclass(frozen=True)
class Read:
    """One record as the observer reads it: an order, a tab (at `at_s`), or junk (None)."""

    what: Order | Tab | None
    at_s: float = 0.0
    topic: str = "tabs.deliveries"


def feed(reads: list[Read]) -> Ledger:
    ledger = Ledger()
    for read in reads:
        if isinstance(read.what, Order) or (read.what is None and read.topic == "tabs.orders"):
            ledger.record_order(read.what if isinstance(read.what, Order) else None)
        else:
            ledger.record_tab(read.what, T0 + int(read.at_s * S))
    return ledger


def row(
    name: str,
    tabs: int,
    received: int,
    *,
    latency: float | None,
    made: float | None,
    duplicates: int = 0,
    makers: int = 1,
    at_s: float = 0.0,
) -> OrderRow:
    return OrderRow(
        order_id=oid(name),
        ordered_at_ns=T0 + int(at_s * S),
        tabs_count=tabs,
        tabs_received=received,
        duplicates=duplicates,
        makers=makers,
        latency_s=latency,
        made_latency_s=made,
    )


# -- the ledger -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reads", "rows", "orphans"),
    [
        pytest.param(
            [Read(order("a", 2)), Read(tab("a", 0, 2), 2.5), Read(tab("a", 1, 2, made_s=2.1), 3.0)],
            [row("a", 2, 2, latency=3.0, made=2.1)],
            0,
            id="complete: latency to the last tab read, made-latency to the last tab made",
        ),
        pytest.param(
            [Read(order("a", 3)), Read(tab("a", 0, 3), 2.5)],
            [row("a", 3, 1, latency=None, made=None)],
            0,
            id="incomplete: no latency yet",
        ),
        pytest.param(
            [Read(tab("a", 0, 1), 2.5), Read(order("a", 1))],
            [row("a", 1, 1, latency=2.5, made=2.0)],
            0,
            id="a tab read before its order counts once the order is read",
        ),
        pytest.param(
            [Read(tab("a", 0, 1), 2.5)],
            [],
            1,
            id="a tab without its order is an orphan, not an order",
        ),
        pytest.param(
            [Read(order("a", 1)), Read(tab("a", 0, 1), 2.5), Read(tab("a", 0, 1, "m2"), 4.0)],
            [row("a", 1, 1, latency=2.5, made=2.0, duplicates=1, makers=2)],
            0,
            id="a tab read twice is a duplicate; its maker was involved too",
        ),
        pytest.param(
            [Read(order("a", 1)), Read(order("a", 5, at_s=9.0)), Read(tab("a", 0, 1), 2.5)],
            [row("a", 1, 1, latency=2.5, made=2.0)],
            0,
            id="the first reading of an order id counts",
        ),
    ],
)
def test_the_ledger_rows(reads: list[Read], rows: list[OrderRow], orphans: int) -> None:
    window = feed(reads).window(since_ns=None)
    assert window.rows == rows
    assert window.orphan_tabs == orphans


def test_unreadable_records_are_counted_not_kept() -> None:
    ledger = feed([Read(None, topic="tabs.orders"), Read(None), Read(None), Read(order("a", 1))])
    window = ledger.window(None)
    assert (window.invalid_orders, window.invalid_tabs, len(window.rows)) == (1, 2, 1)
    assert ledger.take_tick() == (2, 0)  # junk on the orders topic is still an order record
    assert ledger.take_tick() == (0, 0)


@pytest.mark.parametrize(
    ("since_s", "orders", "dead_letters"),
    [(None, ["a", "b", "c"], 2), (0.0, ["a", "b", "c"], 2), (5.0, ["b", "c"], 1), (11.0, [], 0)],
)
def test_a_window_holds_what_was_placed_since_its_start(
    since_s: float | None, orders: list[str], dead_letters: int
) -> None:
    ledger = feed([Read(order("a", 1, 0.0)), Read(order("b", 1, 5.0)), Read(order("c", 1, 10.0))])
    ledger.record_dead_letter(T0 + 1 * S)
    ledger.record_dead_letter(T0 + 6 * S)
    window = ledger.window(None if since_s is None else T0 + int(since_s * S))
    assert [r.order_id for r in window.rows] == [oid(name) for name in orders]
    assert window.dead_letters == dead_letters
    assert ledger.count_seen(None if since_s is None else T0 + int(since_s * S)) == len(orders)


@pytest.mark.parametrize(
    ("reads", "missing"),
    [
        ([], Missing(0, 0, None)),
        ([Read(order("a", 3)), Read(tab("a", 0, 3))], Missing(1, 2, T0)),
        ([Read(order("a", 1)), Read(tab("a", 0, 1))], Missing(0, 0, None)),
        (
            [Read(order("a", 2, at_s=4.0)), Read(order("b", 30, at_s=1.0))],
            Missing(2, 32, T0 + 1 * S),
        ),
        ([Read(tab("a", 0, 3))], Missing(0, 0, None)),  # an orphan is no order (yet)
    ],
)
def test_what_is_missing(reads: list[Read], missing: Missing) -> None:
    assert feed(reads).missing(None) == missing


# -- the statistics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([7.0], 99, 7.0),
        ([1.0, 2.0, 3.0], 50, 2.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([float(v) for v in range(1, 101)], 7, 7.0),  # 0.07 * 100 must not rank 8
        ([3.0, 1.0, 2.0], 100, 3.0),
        ([float(v) for v in range(1, 21)], 99, 20.0),
    ],
)
def test_nearest_rank_percentiles(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_0_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile([1.0], p)


def test_latency_stats_of_nothing_is_none_and_of_values_is_measured_ones() -> None:
    assert latency_stats([]) is None
    stats = latency_stats([2.0, 2.5, 9.0])
    assert stats is not None
    assert (stats.p50, stats.p95, stats.p99, stats.max) == (2.5, 9.0, 9.0, 9.0)


@pytest.mark.parametrize(
    ("final", "observed_at_s", "lost"),
    [
        (False, 30.0, 0),  # young and incomplete: still coming
        (False, 61.0, 1),  # older than lost_after_s (60): lost before the end
        (True, 1.0, 1),  # the run is over: nothing more will come
    ],
)
def test_when_an_incomplete_order_is_lost(final: bool, observed_at_s: float, lost: int) -> None:
    rows = [
        row("done", 1, 1, latency=2.5, made=2.0),
        row("open", 3, 1, latency=None, made=None),
    ]
    summary = summarize(rows, final=final, observed_at_ns=T0 + int(observed_at_s * S))
    assert (summary.orders, summary.complete_orders, summary.incomplete_orders) == (2, 1, 1)
    assert summary.lost_orders == lost
    assert summary.lost_order_ids == ([oid("open")] if lost else [])
    assert summary.tabs == 2


def sample(jobs: int | None, orders_per_s: float, tabs_per_s: float) -> TimelineSample:
    return TimelineSample(
        t_ns=T0, patients=1, jobs=jobs, lag=0, orders_per_s=orders_per_s, tabs_per_s=tabs_per_s
    )


@pytest.mark.parametrize(
    ("timeline", "max_jobs", "rates"),
    [
        ([], None, (0.0, 0.0)),
        ([sample(None, 1.0, 10.0)], None, (1.0, 10.0)),
        ([sample(2, 1.0, 10.0), sample(5, 3.0, 30.0), sample(None, 2.0, 20.0)], 5, (2.0, 20.0)),
    ],
)
def test_jobs_and_rates_from_the_timeline(
    timeline: list[TimelineSample], max_jobs: int | None, rates: tuple[float, float]
) -> None:
    summary = summarize([], timeline, observed_at_ns=T0)
    assert summary.max_jobs == max_jobs
    rate = throughput(timeline)
    assert (
        (rate.orders_per_s, rate.tabs_per_s)
        == rates
        == (
            summary.throughput.orders_per_s,
            summary.throughput.tabs_per_s,
        )
    )


# -- draining -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behind", "missing", "drained", "text"),
    [
        (0, Missing(0, 0, None), True, "0 incomplete orders (0 tabs missing), read up to date"),
        (3, Missing(0, 0, None), False, "0 incomplete orders (0 tabs missing), 3 records left"),
        (
            0,
            Missing(2, 7, T0),
            False,
            "2 incomplete orders (7 tabs missing, oldest 12.5 s), read up to date",
        ),
    ],
)
def test_drained_means_read_up_to_date_and_nothing_incomplete(
    behind: int, missing: Missing, drained: bool, text: str
) -> None:
    state = DrainState.of(behind, missing, T0 + int(12.5 * S))
    assert state.drained is drained
    assert repr(state).startswith(text)
