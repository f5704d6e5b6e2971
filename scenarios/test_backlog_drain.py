"""Orders pile up while no maker may start; once scaling resumes the backlog is drained."""

from __future__ import annotations

import math

import pytest

from pytest_medpubsub.keda.scaledjob import load_scaled_job
from pytest_medpubsub.project import SCALEDJOB_MANIFEST, project_dir
from pytest_medpubsub.system import MedpubsubSystem
from pytest_medpubsub.waiting import wait_until

BACKLOG_ORDERS = 30


# Backlogged orders wait by design, so latency is not the point here; losses and duplicates are.
@pytest.mark.medpubsub_slo(p95_s=60.0, p99_s=90.0, min_jobs=3)
def test_a_backlog_is_drained_once_makers_may_run(medpubsub_system: MedpubsubSystem) -> None:
    medpubsub_system.platform.pause_scaling(True)
    try:
        # The warm makers stay at rest, so they are stopped here, with no order in flight.
        wait_until(
            lambda: _stop_every_maker(medpubsub_system),
            lambda jobs: jobs == 0,
            60,
            "no maker running",
            interval_s=1.0,
        )
        medpubsub_system.scale_patients(3)
        medpubsub_system.observer.wait_for_orders(
            BACKLOG_ORDERS, timeout_s=60, since=medpubsub_system.started
        )
        medpubsub_system.scale_patients(0)
        backlog = wait_until(
            medpubsub_system.lag, lambda lag: lag >= BACKLOG_ORDERS, 30, "the backlog as lag"
        )
        assert medpubsub_system.medicine_jobs() == 0
    finally:
        medpubsub_system.platform.pause_scaling(False)
    # KEDA starts the warm floor at its first poll, then makers up to one per lagThreshold queued
    # orders (what a maker holds, rule [wiring.capacity]), the warm ones included: 30 orders, 3.
    holds = load_scaled_job(project_dir() / SCALEDJOB_MANIFEST).trigger.lag_threshold
    needed = math.ceil(backlog / holds)
    medpubsub_system.wait_for_jobs(
        lambda jobs: jobs >= needed, 30, f"{needed} makers for {backlog} orders"
    )
    drained = medpubsub_system.observer.wait_drained(180, since=medpubsub_system.started)
    assert drained.complete_orders == drained.orders >= BACKLOG_ORDERS


def _stop_every_maker(system: MedpubsubSystem) -> int:
    """Stop the makers that run (KEDA is paused, so none replaces them); those that still run."""
    running = system.medicine_jobs()
    if running:
        system.platform.kill_medicine(running)
    return system.medicine_jobs()
