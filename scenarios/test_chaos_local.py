"""The local Chaos Toolkit experiments, run through chaoslib's Python API under load.

Each experiment checks its steady state (orders delivered within the bound, none lost, no tab
twice) before and after killing processes of the system with SIGKILL, while the platform's patient
and Locust patients (started by the experiment) keep ordering. The test then asserts the journal,
the SLOs over the whole run (a killed maker's open transaction holds its tabs back until the
broker aborts it after 10 s, so the latency bounds are those of a run with faults), and that
every order Locust had acknowledged was made; the journal and the fault's figures (before vs
during, time to recover) go into the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_medpubsub import progress, project
from pytest_medpubsub.chaos.experiment import Journal, activity_runs, outcome, run_file, to_json
from pytest_medpubsub.chaos.figures import FaultFigures, fault_figures
from pytest_medpubsub.chaos.probes import makers_scaled_in
from pytest_medpubsub.load import acknowledged_ids
from pytest_medpubsub.platforms.local_system import LocalSystem
from pytest_medpubsub.system import MedpubsubSystem

# How far back the experiments' probes look: this test's orders, not the session's.
HISTORY_S = 300.0


def run_experiment(system: MedpubsubSystem, name: str, fault: str) -> FaultFigures:
    """Run chaos/<name> against the local platform under load; assert and report its outcome."""
    platform = system.platform
    if not isinstance(platform, LocalSystem) or platform.state_file is None:
        pytest.skip(f"{name} acts on the local platform's processes")
    system.scale_patients(1)
    # The hypothesis is checked under load: let orders flow before it is.
    system.observer.wait_for_orders(3, timeout_s=30, since=system.started)
    load_dir = system.report_dir / "chaos-load"
    journal = run_file(
        project.project_dir() / "chaos" / name,
        {"state_file": str(platform.state_file), "load_dir": str(load_dir), "history_s": HISTORY_S},
    )
    system.attach("chaos", {"experiment": name, "outcome": outcome(journal)} | to_json(journal))
    locust = _locust_figures(journal)
    if locust is not None:
        system.attach("locust", locust)
    assert journal["steady_states"]["before"]["steady_state_met"], outcome(journal)
    assert journal["status"] == "completed", outcome(journal)
    assert not journal["deviated"], outcome(journal)
    assert activity_runs(journal, fault), f"{fault} never ran: {outcome(journal)}"
    assert locust is not None, "the experiment's load reported no figures"
    assert locust["passed"], f"Locust: {locust}"

    system.scale_patients(0)
    drained = system.observer.wait_drained(120, since=system.started)
    figures = fault_figures(journal, drained.per_order, fault)
    system.attach("chaos_figures", figures.model_dump(mode="json"))
    progress.say(figures.describe())
    assert figures.during.lost == 0, figures.describe()
    assert figures.during.duplicate_tabs == 0, figures.describe()
    _assert_acknowledged_orders_made(
        load_dir, {r.order_id for r in drained.per_order if r.latency_s}
    )
    return figures


def _locust_figures(journal: Journal) -> dict[str, Any] | None:
    """What stop_load returned: in the method, or in the rollbacks when the method was cut short."""
    for run in [*journal.get("run", []), *journal.get("rollbacks", [])]:
        output = run.get("output")
        stopped_load = run["activity"]["provider"].get("func") == "stop_load"
        if stopped_load and isinstance(output, dict) and "stats" in output:
            return output
    return None


def _assert_acknowledged_orders_made(load_dir: Path, made: set[str]) -> None:
    """Every order Kafka acknowledged to a Locust patient was made: none lost, even across a
    broker restart."""
    acknowledged = acknowledged_ids(load_dir)
    assert acknowledged, f"no order acknowledged in {load_dir}"
    unmade = [order_id for order_id in acknowledged if order_id not in made]
    assert not unmade, f"{len(unmade)} acknowledged orders never made, e.g. {unmade[:5]}"


@pytest.mark.medpubsub_slo(p95_s=15.0, p99_s=25.0, min_jobs=2)
def test_killing_makers_mid_order_keeps_the_steady_state(
    medpubsub_system: MedpubsubSystem,
) -> None:
    figures = run_experiment(medpubsub_system, "kill-medicine-local.json", "kill_makers")
    assert figures.injections == 3
    platform = medpubsub_system.platform
    assert isinstance(platform, LocalSystem)
    assert makers_scaled_in(timeout_s=60, state_file=str(platform.state_file))


# The only broker is down for about 5 s: orders placed then wait for it, then for a maker caught
# mid-commit to give up (its watchdog, 7 s) and for a fresh maker to take its partitions.
@pytest.mark.medpubsub_slo(p95_s=25.0, p99_s=40.0, min_jobs=2)
def test_a_broker_restart_loses_no_acknowledged_order(medpubsub_system: MedpubsubSystem) -> None:
    platform = medpubsub_system.platform
    restarts = getattr(platform, "broker_restarts", 0)
    figures = run_experiment(medpubsub_system, "kill-kafka-local.json", "kill_broker")
    assert figures.injections == 1
    assert getattr(platform, "broker_restarts", 0) == restarts + 1
    # The harness's own clients came through too: the observer reads to the end again (this
    # raises, with what it saw last, when its end offsets cannot be had).
    medpubsub_system.observer.wait_caught_up(timeout_s=30)
