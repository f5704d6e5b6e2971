"""A step from 1 to 5 patients: makers scale out with the lag, then back to zero."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem


# Orders placed right after the step wait for the new makers to start: the latency bounds are
# those of a transient, the scaling bounds are the point.
@pytest.mark.medpubsub_slo(
    p95_s=8.0, p99_s=15.0, min_jobs=6, scale_out_within_s=30, scale_in_within_s=45
)
def test_makers_follow_a_step_from_one_to_five_patients(
    medpubsub_system: MedpubsubSystem,
) -> None:
    medpubsub_system.scale_patients(1)
    medpubsub_system.run_for(10)
    one_patient_peak = medpubsub_system.summary().max_jobs or 0
    medpubsub_system.scale_patients(5)
    # Five patients keep about ten makers busy (2 s an order, one order a second each).
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 6, 45, "makers to scale out to >= 6")
    medpubsub_system.run_for(20)
    assert (medpubsub_system.summary().max_jobs or 0) > one_patient_peak
    medpubsub_system.scale_patients(0)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs == 0, 60, "the makers to scale in to 0")
