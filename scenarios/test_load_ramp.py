"""A Locust ramp of patients (1, then 3, then none): the warm makers serve it at the floor, every
order Locust had acknowledged is made, and Locust's figures go into the report beside the
observer's."""

from __future__ import annotations

import pytest

from pytest_medpubsub.load import LocustLoad, acknowledged_ids, parse_ramp
from pytest_medpubsub.system import MedpubsubSystem

RAMP = "1x10,3x15,0x5"


# Three patients keep six to nine orders in flight, far below what the two warm makers hold (24
# orders, the ScaledJob's activationLagThreshold): KEDA adds no maker and no partition moves, so
# the default SLOs hold.
@pytest.mark.medpubsub_slo(min_jobs=2)
def test_a_locust_ramp_is_served_by_the_warm_makers(
    medpubsub_system: MedpubsubSystem, medpubsub_locust: LocustLoad
) -> None:
    result = medpubsub_locust.run(RAMP)

    assert result.passed, result.describe()
    expected = sum(step.patients * step.seconds for step in parse_ramp(RAMP))
    # One order per patient and second; start-up and the last partial second cost a few.
    assert result.stats.requests >= 0.8 * expected, result.describe()
    assert result.stats.requests == result.acknowledged_orders

    drained = medpubsub_system.observer.wait_drained(120, since=medpubsub_system.started)
    made = {row.order_id for row in drained.per_order if row.latency_s is not None}
    acknowledged = acknowledged_ids(medpubsub_system.report_dir / "locust")
    assert len(acknowledged) == result.acknowledged_orders
    unmade = [order_id for order_id in acknowledged if order_id not in made]
    assert not unmade, f"{len(unmade)} acknowledged orders were never made, e.g. {unmade[:5]}"
