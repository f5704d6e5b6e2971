"""A step from 1 to 5 patients: makers scale out with the lag, then back to the warm floor."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem


# The default latency SLOs: the warm makers have room for the step while KEDA adds makers (one
# per lagThreshold orders in flight: five patients keep about ten orders in flight).
@pytest.mark.medpubsub_slo(min_jobs=4, scale_out_within_s=30, scale_in_within_s=45)
def test_makers_follow_a_step_from_one_to_five_patients(
    medpubsub_system: MedpubsubSystem,
) -> None:
    medpubsub_system.scale_patients(1)
    medpubsub_system.run_for(10)
    one_patient_peak = medpubsub_system.summary().max_jobs or 0
    medpubsub_system.scale_patients(5)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 4, 45, "makers to scale out to >= 4")
    medpubsub_system.run_for(20)
    assert (medpubsub_system.summary().max_jobs or 0) > one_patient_peak
    medpubsub_system.scale_patients(0)
    warm = medpubsub_system.warm_makers
    medpubsub_system.wait_for_jobs(lambda jobs: jobs <= warm, 60, f"the makers back to {warm}")
