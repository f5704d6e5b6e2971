"""Orders pile up while no maker may start; once scaling resumes the backlog is drained."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem
from pytest_medpubsub.waiting import wait_until

BACKLOG_ORDERS = 30
# KEDA runs one maker per lagThreshold (12) orders of lag, the warm floor among them
# (keda/medicine-scaledjob.yaml): 30 orders, 3 makers.
BACKLOG_MAKERS = 3


# Backlogged orders wait by design, so latency is not the point here; losses and duplicates are.
@pytest.mark.medpubsub_slo(p95_s=60.0, p99_s=90.0, min_jobs=BACKLOG_MAKERS)
def test_a_backlog_is_drained_once_makers_may_run(medpubsub_system: MedpubsubSystem) -> None:
    medpubsub_system.platform.pause_scaling(True)
    try:
        # The warm makers stay at rest (system/medicine/warm.py): stopped, and not replaced
        # while scaling is paused.
        medpubsub_system.platform.stop_makers()
        medpubsub_system.wait_for_jobs(lambda jobs: jobs == 0, 60, "no maker running")
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
    # KEDA starts the warm floor at its first poll, then tops it up to one maker per lagThreshold
    # orders of the backlog.
    medpubsub_system.wait_for_jobs(
        lambda jobs: jobs >= BACKLOG_MAKERS, 30, f"makers for {backlog} orders"
    )
    drained = medpubsub_system.observer.wait_drained(180, since=medpubsub_system.started)
    assert drained.complete_orders == drained.orders >= BACKLOG_ORDERS
