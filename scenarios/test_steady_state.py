"""One patient for a while: every order made once, at the physical floor, by makers KEDA-style
scaled above a floor of warm makers."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem

LOAD_S = 45


# The plugin's default latency SLOs (p95 <= 3 s, p99 <= 4 s): warm makers serve the first order
# like the others.
@pytest.mark.medpubsub_slo(min_jobs=1, scale_in_within_s=30)
def test_one_patient_is_served_within_the_latency_slo(medpubsub_system: MedpubsubSystem) -> None:
    medpubsub_system.scale_patients(1)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 1, 30, "a maker for the first order")
    medpubsub_system.run_for(LOAD_S)
    figures = medpubsub_system.summary()
    # A patient orders once a second: a run that saw far fewer orders did not really load.
    assert figures.orders >= LOAD_S * 0.8, figures.orders
    medpubsub_system.scale_patients(0)
    warm = medpubsub_system.warm_makers
    medpubsub_system.wait_for_jobs(lambda jobs: jobs <= warm, 60, f"the makers back to {warm}")
