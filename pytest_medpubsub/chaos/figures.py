"""What a fault did to the orders: figures before vs during the fault, and time to recover.

Computed from the harness observer's per-order rows (which it watched live, so their latencies
are real) and the experiment's journal (when each fault was injected), so they can be put in the
report next to the journal and compared across runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from pytest_medpubsub.chaos.experiment import Journal, activity_runs, timestamp_ns
from pytest_medpubsub.observer import NS_PER_S, LatencyStats, OrderRow, latency_stats


class WindowFigures(BaseModel):
    """The orders placed in one window of time (from a final summary: incomplete = lost)."""

    model_config = ConfigDict(frozen=True)

    orders: int
    complete: int
    lost: int
    duplicate_tabs: int
    latency_s: LatencyStats | None


class FaultFigures(BaseModel):
    """Before = the orders placed since the experiment's start and delivered before the first
    fault; during = the orders the fault could touch: in flight when it hit, or placed from then
    until the end of the method (which ends once the system has caught up again).

    `recovered_after_s`: from the last injection until every order placed up to the end of the
    fault (the last injection, or the broker serving again) had been delivered: when the
    fault's backlog was gone. `broker_back_after_s`: what `wait_for_broker` measured, if it ran.
    """

    model_config = ConfigDict(frozen=True)

    fault: str
    injections: int
    fault_seconds: list[float]
    before: WindowFigures
    during: WindowFigures
    recovered_after_s: float | None
    broker_back_after_s: float | None

    def describe(self) -> str:
        def latency(window: WindowFigures) -> str:
            stats = window.latency_s
            return "n/a" if stats is None else f"p95 {stats.p95:.2f} s / p99 {stats.p99:.2f} s"

        recovered = "never" if self.recovered_after_s is None else f"{self.recovered_after_s:.1f} s"
        broker = (
            ""
            if self.broker_back_after_s is None
            else f", broker serving again after {self.broker_back_after_s:.1f} s"
        )
        return (
            f"{self.fault} x{self.injections}: {self.during.orders} orders during the fault, "
            f"{self.during.lost} lost, {self.during.duplicate_tabs} duplicate tabs; latency "
            f"before {latency(self.before)}, during {latency(self.during)}; backlog delivered "
            f"{recovered} after the last injection{broker}"
        )


def window_figures(rows: Sequence[OrderRow], start_ns: int, end_ns: int) -> WindowFigures:
    """Figures of the orders placed in [start_ns, end_ns)."""
    return figures_of([row for row in rows if start_ns <= row.ordered_at_ns < end_ns])


def delivered_by(row: OrderRow, moment_ns: int) -> bool:
    return row.latency_s is not None and row.ordered_at_ns + row.latency_s * NS_PER_S < moment_ns


def figures_of(inside: Sequence[OrderRow]) -> WindowFigures:
    """Counts and latency of these orders (incomplete ones count as lost)."""
    latencies = [row.latency_s for row in inside if row.latency_s is not None]
    return WindowFigures(
        orders=len(inside),
        complete=len(latencies),
        lost=len(inside) - len(latencies),
        duplicate_tabs=sum(row.duplicates for row in inside),
        latency_s=latency_stats(latencies),
    )


def recovered_after_s(
    rows: Sequence[OrderRow], injected_ns: int, fault_end_ns: int
) -> float | None:
    """Seconds from the injection until the last order placed up to `fault_end_ns` (those in
    flight when the fault hit included) was delivered; None when one of them never was."""
    affected = [row for row in rows if row.ordered_at_ns <= fault_end_ns]
    if any(row.latency_s is None for row in affected):
        return None
    delivered_ns = max(
        (row.ordered_at_ns + (row.latency_s or 0.0) * NS_PER_S for row in affected),
        default=float(injected_ns),
    )
    return round(max(0.0, (delivered_ns - injected_ns) / NS_PER_S), 2)


def fault_figures(
    journal: Journal,
    rows: Sequence[OrderRow],
    fault_func: str,
    until_func: str | None = "wait_for_broker",
) -> FaultFigures:
    """The figures of the runs of `fault_func` (e.g. `kill_makers`) in an experiment's method.

    The fault lasts until the last injection, or until the end of the last run of `until_func`
    (the action that waits for the system to be whole again) when the method has one.
    """
    faults = activity_runs(journal, fault_func)
    if not faults:
        raise ValueError(f"the journal has no run of {fault_func}")
    waits = activity_runs(journal, until_func) if until_func else []
    experiment_start = timestamp_ns(journal["start"])
    first_fault = timestamp_ns(faults[0]["start"])
    last_fault = timestamp_ns(faults[-1]["start"])
    fault_end = max([last_fault, *(timestamp_ns(run["end"]) for run in waits)])
    method_end = max(timestamp_ns(run["end"]) for run in journal.get("run", []))
    broker_back = [run["output"] for run in waits if isinstance(run.get("output"), int | float)]
    return FaultFigures(
        fault=fault_func,
        injections=len(faults),
        fault_seconds=[
            round((timestamp_ns(run["start"]) - experiment_start) / NS_PER_S, 2) for run in faults
        ],
        before=figures_of(
            [
                row
                for row in rows
                if experiment_start <= row.ordered_at_ns < first_fault
                and delivered_by(row, first_fault)
            ]
        ),
        during=figures_of(
            [
                row
                for row in rows
                if experiment_start <= row.ordered_at_ns < method_end
                and not delivered_by(row, first_fault)
            ]
        ),
        recovered_after_s=recovered_after_s(rows, last_fault, fault_end),
        broker_back_after_s=float(broker_back[-1]) if broker_back else None,
    )
