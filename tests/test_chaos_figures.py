"""Fault figures and journal reading: pure functions over rows and a journal-shaped dict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_medpubsub.chaos.experiment import activity_runs, outcome, timestamp_ns
from pytest_medpubsub.chaos.figures import fault_figures, recovered_after_s, window_figures
from pytest_medpubsub.observer import NS_PER_S, OrderRow

T0 = 1_800_000_000 * NS_PER_S


def row(at_s: float, latency_s: float | None, duplicates: int = 0) -> OrderRow:
    return OrderRow(
        order_id=f"order-{at_s}",
        ordered_at_ns=T0 + int(at_s * NS_PER_S),
        tabs_count=3,
        tabs_received=3 if latency_s is not None else 1,
        duplicates=duplicates,
        makers=1,
        latency_s=latency_s,
        made_latency_s=latency_s,
    )


def iso(at_s: float) -> str:
    return datetime.fromtimestamp((T0 + at_s * NS_PER_S) / NS_PER_S, UTC).isoformat()


def run(func: str, start_s: float, end_s: float, status: str = "succeeded") -> dict[str, Any]:
    return {
        "activity": {"name": func.replace("_", "-"), "provider": {"func": func}},
        "status": status,
        "start": iso(start_s),
        "end": iso(end_s),
        "output": None,
    }


def test_a_window_counts_its_orders_and_their_latency() -> None:
    rows = [row(0, 2.0), row(1, 3.0), row(2, None), row(3, 4.0, duplicates=2), row(9, 1.0)]
    figures = window_figures(rows, T0, T0 + 5 * NS_PER_S)
    assert (figures.orders, figures.complete, figures.lost, figures.duplicate_tabs) == (4, 3, 1, 2)
    assert figures.latency_s is not None
    assert figures.latency_s.max == 4.0


def test_recovery_ends_when_every_order_placed_until_the_fault_ended_is_delivered() -> None:
    rows = [row(9, 3.0), row(10, 12.0), row(11, 3.0), row(12, 9.0), row(14, 2.5), row(30, 9.0)]
    # Fault at 10 s, over at 12 s: the slowest order placed by then is done at 22 s.
    assert recovered_after_s(rows, T0 + 10 * NS_PER_S, T0 + 12 * NS_PER_S) == pytest.approx(12.0)


def test_no_recovery_while_an_order_of_the_fault_is_missing() -> None:
    rows = [row(10, 3.0), row(11, None)]
    assert recovered_after_s(rows, T0 + 10 * NS_PER_S, T0 + 12 * NS_PER_S) is None


def test_figures_before_and_during_the_faults_of_a_journal() -> None:
    journal = {
        "start": iso(0),
        "status": "completed",
        "deviated": False,
        "run": [
            run("start_load", 10, 11),
            run("kill_makers", 12, 12.1),
            run("kill_makers", 15, 15.1),
            run("no_lost_orders", 15.2, 30),
        ],
    }
    rows = [
        row(1, 3.0),
        row(5, 4.0),
        row(10, 9.0),  # in flight at the first fault (12 s): touched by it
        row(13, 14.0),
        row(16, 3.0),
        row(29, 3.5),
        row(31, 3.0),  # after the method
    ]
    figures = fault_figures(journal, rows, "kill_makers")
    assert figures.injections == 2
    assert figures.fault_seconds == [12, 15]
    assert figures.before.orders == 2
    assert figures.before.latency_s is not None
    assert figures.before.latency_s.max == 4.0
    assert (figures.during.orders, figures.during.lost) == (4, 0)
    assert figures.during.latency_s is not None
    assert figures.during.latency_s.max == 14.0
    # The order placed at 13 s (in flight at the last kill, 15 s) was done at 27 s.
    assert figures.recovered_after_s == pytest.approx(12.0)
    assert figures.broker_back_after_s is None
    assert "kill_makers x2: 4 orders during the fault, 0 lost" in figures.describe()
    with pytest.raises(ValueError, match="no run of kill_broker"):
        fault_figures(journal, rows, "kill_broker")


def test_a_broker_fault_lasts_until_the_broker_serves_again() -> None:
    journal = {
        "start": iso(0),
        "run": [
            run("kill_broker", 10, 10.1),
            {**run("wait_for_broker", 10.1, 16), "output": 5.9},
            run("no_lost_orders", 16, 25),
        ],
    }
    rows = [row(5, 3.0), row(8, 4.0), row(12, 9.0), row(15, 6.0), row(20, 3.0)]
    figures = fault_figures(journal, rows, "kill_broker")
    assert figures.broker_back_after_s == 5.9
    assert figures.before.orders == 1  # the order placed at 8 s was still in flight at 10 s
    assert figures.during.orders == 4
    assert figures.recovered_after_s == pytest.approx(11.0)  # placed at 15 s, done at 21 s


def test_outcome_names_what_failed_and_was_out_of_tolerance() -> None:
    journal = {
        "status": "completed",
        "deviated": True,
        "steady_states": {
            "before": {"probes": [{"activity": {"name": "ok"}, "status": "succeeded"}]},
            "after": {
                "probes": [
                    {
                        "activity": {"name": "orders-delivered"},
                        "status": "succeeded",
                        "tolerance_met": False,
                        "output": False,
                    }
                ]
            },
        },
        "run": [{**run("kill_makers", 1, 2, "failed"), "exception": ["Boom\n", "WaitTimeout: x"]}],
        "rollbacks": [],
    }
    text = outcome(journal)
    assert text.startswith("experiment completed (deviated)")
    assert "after: orders-delivered -> False" in text
    assert "run: kill-makers -> ['WaitTimeout: x']" in text
    assert [r["activity"]["name"] for r in activity_runs(journal, "kill_makers")] == ["kill-makers"]
    assert timestamp_ns(iso(1.5)) == T0 + int(1.5 * NS_PER_S)
