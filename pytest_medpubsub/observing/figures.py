"""The figures of a run (docs/design.md §2.5) and the statistics behind them: pure functions of
the per-order rows and the timeline, so that every rule (what counts as lost, which percentile)
is tested on tables without Kafka.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

NS_PER_S = 1_000_000_000
LOST_IDS_SHOWN = 20
"""A summary names at most this many lost orders (the count is always complete)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatencyStats(_Frozen):
    """Nearest-rank percentiles of a set of latencies, in seconds."""

    p50: float
    p95: float
    p99: float
    max: float


class TimelineSample(_Frozen):
    """One second of the run; platform fields are None without a sampler or when it failed."""

    t_ns: int
    patients: int | None
    jobs: int | None
    lag: int | None
    orders_per_s: float
    tabs_per_s: float


class Throughput(_Frozen):
    """Observed rates averaged over the timeline samples of the summary's window."""

    orders_per_s: float
    tabs_per_s: float


class OrderRow(_Frozen):
    """One order, for plots and for finding out what happened to it."""

    order_id: str
    ordered_at_ns: int
    tabs_count: int
    tabs_received: int
    duplicates: int
    makers: int
    latency_s: float | None
    made_latency_s: float | None


class Summary(_Frozen):
    """The figures of docs/design.md §2.5 for the orders placed since a mark, plus a few extras.

    `latency_s` and `made_latency_s` are None when no order of the window is complete, `max_jobs`
    when no sample carried a job count. The extras (`since_ns`, `observed_at_ns`, `final`,
    `incomplete_orders`, `lost_order_ids`, `orphan_tabs`, `invalid_orders`, `invalid_tabs`,
    `makers`, `throughput`, `per_order`) help to explain a failure without re-running the test.
    """

    orders: int
    tabs: int
    complete_orders: int
    incomplete_orders: int
    lost_orders: int
    duplicate_tabs: int
    dead_letters: int
    latency_s: LatencyStats | None
    made_latency_s: LatencyStats | None
    max_jobs: int | None
    timeline: list[TimelineSample]
    throughput: Throughput
    per_order: list[OrderRow]
    lost_order_ids: list[str]
    makers: int
    orphan_tabs: int
    invalid_orders: int
    invalid_tabs: int
    since_ns: int | None
    observed_at_ns: int
    final: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what `report.json` holds)."""
        return self.model_dump(mode="json")


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p`-th percentile: the smallest value with at least p % of values ≤ it.

    Nearest-rank always returns a value that was measured (no interpolation between two orders),
    which is what an SLO like "95 % of orders within 5 s" means. None for no values.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not values:
        return None
    ordered = sorted(values)
    # p * n first: exact for whole percentages; the epsilon keeps 0.07 * 100 from ranking 8.
    rank = max(1, math.ceil(p * len(ordered) / 100 - 1e-9))
    return ordered[rank - 1]


def latency_stats(values: Sequence[float]) -> LatencyStats | None:
    """p50/p95/p99/max of `values` (nearest rank); None when there are none."""
    if not values:
        return None
    p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
    if p50 is None or p95 is None or p99 is None:  # pragma: no cover - values is not empty
        return None
    return LatencyStats(p50=p50, p95=p95, p99=p99, max=max(values))


def summarize(
    rows: Sequence[OrderRow],
    timeline: Sequence[TimelineSample] = (),
    *,
    dead_letters: int = 0,
    final: bool = False,
    lost_after_s: float = 60.0,
    observed_at_ns: int | None = None,
    since_ns: int | None = None,
    makers: int = 0,
    orphan_tabs: int = 0,
    invalid_orders: int = 0,
    invalid_tabs: int = 0,
) -> Summary:
    """The figures of one window from its per-order rows: `Observer.summary` without Kafka.

    An incomplete order is lost when the run is over (`final`) or when it is older than
    `lost_after_s` at `observed_at_ns` (now by default).
    """
    now = time.time_ns() if observed_at_ns is None else observed_at_ns
    rows = sorted(rows, key=lambda row: row.ordered_at_ns)
    lost_after_ns = lost_after_s * NS_PER_S
    lost = [
        row
        for row in rows
        if row.latency_s is None and (final or now - row.ordered_at_ns > lost_after_ns)
    ]
    latencies = [row.latency_s for row in rows if row.latency_s is not None]
    made_latencies = [row.made_latency_s for row in rows if row.made_latency_s is not None]
    return Summary(
        orders=len(rows),
        tabs=sum(row.tabs_received for row in rows),
        complete_orders=len(latencies),
        incomplete_orders=len(rows) - len(latencies),
        lost_orders=len(lost),
        duplicate_tabs=sum(row.duplicates for row in rows),
        dead_letters=dead_letters,
        latency_s=latency_stats(latencies),
        made_latency_s=latency_stats(made_latencies),
        max_jobs=max((s.jobs for s in timeline if s.jobs is not None), default=None),
        timeline=list(timeline),
        throughput=throughput(timeline),
        per_order=rows,
        lost_order_ids=[row.order_id for row in lost[:LOST_IDS_SHOWN]],
        makers=makers,
        orphan_tabs=orphan_tabs,
        invalid_orders=invalid_orders,
        invalid_tabs=invalid_tabs,
        since_ns=since_ns,
        observed_at_ns=now,
        final=final,
    )


def throughput(timeline: Sequence[TimelineSample]) -> Throughput:
    """Orders and tabs per second, averaged over the samples (zero without any)."""
    if not timeline:
        return Throughput(orders_per_s=0.0, tabs_per_s=0.0)
    return Throughput(
        orders_per_s=sum(s.orders_per_s for s in timeline) / len(timeline),
        tabs_per_s=sum(s.tabs_per_s for s in timeline) / len(timeline),
    )
