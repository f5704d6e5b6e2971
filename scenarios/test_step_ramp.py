"""A step from 1 to 15 patients: makers scale out with the load, then back to the warm floor."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem

# Fifteen patients keep about 31 orders in flight, more than the two warm makers hold (24 orders,
# the ScaledJob's activationLagThreshold), so KEDA adds makers: one per 12 orders of lag
# (lagThreshold, what a maker holds), the warm ones among them. Each that joins takes partitions
# from the others.
# The target is the default SLOs (p95 3 s, p99 4 s). Measured locally on 2026-12-07, 2 idle
# cores, with KEDA's strategy deducting the floor: p95 2.62-3.25 s, p99 3.42-5.27 s, 4-5 makers,
# in six runs (with `default`, alternated in three of them: p95 2.85-3.34 s, p99 3.47-3.93 s,
# 6-7 makers; earlier, p95 2.81-3.41 s in five runs); on the kubeadm cluster, p95 3.23 s and p99
# 3.62 s with 4 makers. What is left, from the makers' logs (README, "What is left of the tail
# is scale-out"): about half of the orders over 3 s waited 0.9-2 s for workers at a warm maker
# that was full until KEDA's first new maker joined (orders are keyed by patient, so a maker's
# share is uneven), and half were made again after a join revoked their partition (each join
# then committed what ended within 0.8 s and handed the rest over unmade). Since the evening of
# 2026-12-07 a revocation waits for nothing and its orders in flight commit where they began
# unless the next owner, which registers half a making time after it gets the partition, fences
# them first. Since then, the default SLOs were met in every run: p95 2.64-3.00 s and p99
# 3.08-3.98 s in seven local runs (2026-12-07 and 08, 3-4 makers), p95 2.72 and 2.76 s and p99
# 3.16 and 3.20 s in two on the kubeadm cluster. One of those runs ended at p95 3.00 s and p99
# 3.98 s, at the default bounds, and a run that fails them fails CI, so the marker keeps bounds,
# tightened to what those runs leave room for (from p95 7 s and p99 9 s). `make e2e-here` runs
# it in the bring-your-own-Kafka stage only (here/e2e_strimzi.py says why).
STEP_PATIENTS = 15


@pytest.mark.medpubsub_slo(
    p95_s=4.0, p99_s=5.0, min_jobs=3, scale_out_within_s=30, scale_in_within_s=45
)
# The dispatcher design starts a maker process per order, about 0.3 CPU-seconds each: at 15
# orders a second that is more than this 2-core machine has (its knee is about 5 patients, README,
# `make bench`). The design leaves it out for that reason (pytest_medpubsub/designs/dispatcher.py);
# the bounds are an overload's, for a run by hand.
@pytest.mark.medpubsub_design_slo("dispatcher", p95_s=12.0, p99_s=15.0)
def test_makers_follow_a_step_from_one_to_fifteen_patients(
    medpubsub_system: MedpubsubSystem,
) -> None:
    medpubsub_system.scale_patients(1)
    medpubsub_system.run_for(10)
    one_patient_peak = medpubsub_system.summary().max_jobs or 0
    medpubsub_system.scale_patients(STEP_PATIENTS)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 3, 45, "makers to scale out to >= 3")
    medpubsub_system.run_for(20)
    assert (medpubsub_system.summary().max_jobs or 0) > one_patient_peak
    medpubsub_system.scale_patients(0)
    warm = medpubsub_system.warm_makers
    medpubsub_system.wait_for_jobs(lambda jobs: jobs <= warm, 60, f"the makers back to {warm}")
