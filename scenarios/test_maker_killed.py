"""Makers killed in the middle of orders: nothing is lost and nothing is delivered twice."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem

KILLS = 3


# Three kills 4 s apart, each followed by KEDA's replacement of the warm maker: every kill's orders
# in flight are made again from the start after its session expires (6 s), and each
# replacement's join moves partitions again. The bounds date from when a killed maker's
# transaction also held the deliveries for its 10 s timeout (measured then: p95 3.2 s, p99
# 13.3 s); scenarios/test_maker_crash.py holds a single crash to tighter ones.
@pytest.mark.medpubsub_slo(p95_s=15.0, p99_s=25.0, min_jobs=2)
def test_killing_makers_under_load_loses_and_duplicates_nothing(
    medpubsub_system: MedpubsubSystem,
) -> None:
    medpubsub_system.scale_patients(2)
    killed: list[str] = []
    for round_number in range(KILLS):
        medpubsub_system.wait_for_jobs(
            lambda jobs: jobs >= 2, 60, f"makers to kill (round {round_number + 1})"
        )
        medpubsub_system.run_for(1.5)  # let the makers get into their orders
        killed += medpubsub_system.kill_medicine(1)
        medpubsub_system.run_for(4)
    assert len(killed) == KILLS
    medpubsub_system.scale_patients(0)
    drained = medpubsub_system.observer.wait_drained(120, since=medpubsub_system.started)
    assert drained.lost_orders == 0
    assert drained.duplicate_tabs == 0
