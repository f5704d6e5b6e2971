"""A step from 1 to 15 patients: makers scale out with the load, then back to the warm floor."""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem

# Fifteen patients keep about 31 orders in flight, more than the two warm makers hold (24 orders,
# the ScaledJob's activationLagThreshold), so KEDA adds makers until there is one per 12 orders
# (lagThreshold, what a maker holds), the warm ones included. Each that joins takes partitions from
# the others: the makers giving them wait in `on_revoke` for their orders in flight on them (up to
# 2 s), orders of the partitions they keep wait too, and the new owner registers a producer per
# partition before those orders commit.
# The target is the default SLOs (p95 3 s, p99 4 s), missed; the bounds stay a transient's, sized
# to the kubeadm cluster's runs. Measured there (Strimzi, secured, 2 cores): before KEDA counted the
# warm makers as capacity and the warm makers stayed at rest, p95 5.3-10.7 s and p99 7.0-13.0 s
# with 6-13 makers; after, p95 4.3-6.7 s and p99 4.8-8.3 s with 5-6 makers in four runs of five.
# The fifth (p95 9.5 s) stalled at its start: a warm maker waited 60 s in its rebalance callback
# for committed offsets that stayed unstable (not explained yet; the maker logs such waits now).
# What else costs: the 14 patients are pods that start at once on the same 2 cores (the harness's
# own sampler went 7 s without a sample).
STEP_PATIENTS = 15


@pytest.mark.medpubsub_slo(
    p95_s=7.0, p99_s=9.0, min_jobs=3, scale_out_within_s=30, scale_in_within_s=45
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
