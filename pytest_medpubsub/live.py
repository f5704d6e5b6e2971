"""The live status view of `medpubsub up` and `medpubsub demo`: one table, refreshed each second.

It reads only the observer's latest timeline sample (which already holds patients, makers and
lag), so refreshing the view costs no extra calls to Kafka.
"""

from __future__ import annotations

from rich.table import Table

from pytest_medpubsub.observer import Summary

RECENT_SAMPLES = 5


def status_table(summary: Summary, bootstrap: str, title: str) -> Table:
    """Orders/s, tabs/s, makers, lag and latency of the last seconds and of the whole run."""
    recent = summary.timeline[-RECENT_SAMPLES:]
    last = recent[-1] if recent else None
    orders_per_s = sum(s.orders_per_s for s in recent) / len(recent) if recent else 0.0
    tabs_per_s = sum(s.tabs_per_s for s in recent) / len(recent) if recent else 0.0
    latency = summary.latency_s
    table = Table(title=title, show_header=False, min_width=52)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    table.add_row("Kafka", bootstrap)
    table.add_row("patients", _shown(last.patients if last else None))
    table.add_row("medicine makers (jobs)", _shown(last.jobs if last else None))
    table.add_row("lag of the orders topic", _shown(last.lag if last else None))
    table.add_row(
        f"orders/s · tabs/s (last {RECENT_SAMPLES} s)", f"{orders_per_s:.1f} · {tabs_per_s:.1f}"
    )
    table.add_row(
        "orders · complete · in flight",
        f"{summary.orders} · {summary.complete_orders} · {summary.incomplete_orders}",
    )
    table.add_row("tabs delivered", str(summary.tabs))
    table.add_row(
        "order latency p50 · p95 · max",
        "-" if latency is None else f"{latency.p50:.2f} · {latency.p95:.2f} · {latency.max:.2f} s",
    )
    table.add_row(
        "lost · duplicate tabs · dead letters",
        f"{summary.lost_orders} · {summary.duplicate_tabs} · {summary.dead_letters}",
    )
    return table


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)
