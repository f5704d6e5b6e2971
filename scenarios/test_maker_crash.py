"""One maker crashes (SIGKILL) under steady load: the orders it held cost about one more floor.

A crashed maker leaves no open transaction behind (its orders are committed only once made,
system/medicine/transaction.py), and its partitions go to another maker when its session expires;
that maker's registration fences it, reads where each partition stands and makes the lost orders
again. What the crash costs is the session expiry plus one making time, paid only by the orders
of the crashed maker's partitions.
"""

from __future__ import annotations

import pytest

from pytest_medpubsub.system import MedpubsubSystem


# The target is p95 3 s and p99 5 s; measured (session 1.5 s, quiet machine) p95 2.59-3.99 s,
# p99 4.55-5.62 s. The orders the crashed maker was making are made again from the start: their
# latency is the time they had been in flight, plus the session expiry, the survivor's
# registration of the partitions and the 2 s of making, 4.5-5.6 s. With two makers that is half
# of the 4 orders in flight, and the p99 of 120 orders is their second worst. KEDA then replaces
# the crashed maker (the warm floor), and its join moves partitions once more: the p95's spread.
@pytest.mark.medpubsub_slo(p95_s=4.0, p99_s=6.0, min_jobs=2)
def test_a_maker_crash_costs_its_orders_about_one_more_floor(
    medpubsub_system: MedpubsubSystem,
) -> None:
    medpubsub_system.scale_patients(4)
    medpubsub_system.wait_for_jobs(lambda jobs: jobs >= 2, 60, "two makers, one to crash")
    medpubsub_system.run_for(12)  # the makers hold orders of every partition when one crashes
    assert len(medpubsub_system.kill_medicine(1)) == 1
    medpubsub_system.run_for(18)
    medpubsub_system.scale_patients(0)
    drained = medpubsub_system.observer.wait_drained(120, since=medpubsub_system.started)
    assert drained.lost_orders == 0
    assert drained.duplicate_tabs == 0
