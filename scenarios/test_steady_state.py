"""One patient for a while: every order made once, quickly, by makers KEDA-style scaled."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem

# Long enough that the first orders, which wait for the first makers to start, fall above p95.
LOAD_S = 45


@pytest.mark.medpubsub_slo(p95_s=5.0, p99_s=8.0, min_jobs=1, scale_in_within_s=30)
def test_one_patient_is_served_within_the_latency_slo(medpubsub_system: MedpubsubSystem) -> None:
    medpubsub_system.scale_patients(1)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 1, 30, "a maker for the first order")
    medpubsub_system.run_for(LOAD_S)
    figures = medpubsub_system.summary()
    # A patient orders once a second: a run that saw far fewer orders did not really load.
    assert figures.orders >= LOAD_S * 0.8, figures.orders
    medpubsub_system.scale_patients(0)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs == 0, 60, "the makers to scale in to 0")
