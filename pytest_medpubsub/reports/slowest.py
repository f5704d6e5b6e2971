"""What a failed run's message says beyond the SLO table: its slowest orders, and the machine.

A latency bound missed by a few orders reads differently from one missed by all of them: orders
slow at the start point at a system that was not ready, orders slow together in the middle at a
fault or a stalled machine, and a long gap between an order's last tab being made and its
delivery points at the commit, not the making. So the message lists the slowest orders with when
each was placed (seconds after the run's start), its latency and when its last tab was made, and
says how busy the machine was (host_cpu.py).
"""

from __future__ import annotations

from pytest_medpubsub.host_cpu import CpuShare
from pytest_medpubsub.observer import Summary
from pytest_medpubsub.slo import SloResult

SLOWEST_SHOWN = 5


def slowest_orders(summary: Summary, count: int = SLOWEST_SHOWN) -> list[str]:
    """One line per order, slowest first: when placed, latency, last tab made, tabs, makers."""
    complete = [row for row in summary.per_order if row.latency_s is not None]
    if not complete:
        return []
    start_ns = summary.since_ns or min(row.ordered_at_ns for row in complete)
    slowest = sorted(complete, key=lambda row: row.latency_s or 0.0, reverse=True)[:count]
    lines = []
    for row in slowest:
        made = "?" if row.made_latency_s is None else f"{row.made_latency_s:.2f} s"
        lines.append(
            f"placed at +{(row.ordered_at_ns - start_ns) / 1e9:.1f} s: delivered after "
            f"{row.latency_s:.2f} s, last tab made after {made}; {row.tabs_count} tabs, "
            f"{row.makers} maker(s), order {row.order_id}"
        )
    return lines


def failure_context(summary: Summary, result: SloResult, host: CpuShare | None) -> str:
    """The lines under the SLO table of a failed run (empty when there is nothing to add)."""
    lines: list[str] = []
    if any(check.name.startswith("latency_") for check in result.failed_checks()):
        orders = slowest_orders(summary)
        if orders:
            lines.append(f"the {len(orders)} slowest orders:")
            lines.extend(f"  {line}" for line in orders)
    if host is not None:
        lines.append(f"during the run {host.describe()}")
    return "\n".join(lines)
