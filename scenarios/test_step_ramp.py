"""A step from 1 to 5 patients: makers scale out with the lag, then back to the warm floor."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem


# Five patients keep about ten orders in flight, above the warm makers' activation threshold (8),
# so KEDA adds makers (one per lagThreshold orders). Each that joins takes partitions from the
# others, and each of those waits for its orders in flight on them (up to 2 s) before handing
# them over; orders arriving meanwhile wait too. Measured: p95 2.6-3.3 s, p99 3.3-4.3 s over the
# step, from the one or two rebalance waves right after it; the latency bounds are a transient's.
@pytest.mark.medpubsub_slo(
    p95_s=4.0, p99_s=6.0, min_jobs=4, scale_out_within_s=30, scale_in_within_s=45
)
# The dispatcher design at 5 patients starts 5 maker processes a second, about 0.3 CPU-seconds
# each: most of this 2-core machine, at the knee of its capacity (README, `make bench`). Five
# runs measured p95 3.5, 4.3, 5.4, 4.9 (bench) and 8.8 s, p99 up to 9.7 s, the slow ones with
# the makers piling up to 38 of the 40 the dispatcher allows; a sixth saturated (p50 9.3 s,
# p95 11.4 s, 40 makers). `make test` leaves it out under that design for that reason.
@pytest.mark.medpubsub_design_slo("dispatcher", p95_s=12.0, p99_s=15.0)
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
