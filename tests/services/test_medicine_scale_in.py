"""Makers that go idle together leave together (system/medicine/idle.py), on a real broker.

When a maker leaves, the makers still there are given its partitions. Registering them must not
start their idle time again: if it did, every maker that left would keep the others for another
full idle timeout, and a scale-in would go one wave at a time (46 s for eight makers with a 10 s
timeout on the cluster).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .kafka_io import STARTED, ServiceFactory, TestTopics, create_topics, delete_topics

# The maker that leaves first (started first, so that it holds every partition before handing
# half to the other), and the one that is then given partitions it never held. The second one's
# timeout is what it would wait again, from the handover on, if registering reset its idle time.
LEAVES_FIRST_IDLE_S = 8
STAYS_IDLE_S = 16
# As many partitions as tabs.orders: registering the half handed over takes long enough, even on
# loopback, for the maker's loop to see it (a few partitions register between two of its ticks).
PARTITIONS = 40


@pytest.fixture
def forty_partitions(medpubsub_kafka: str) -> Iterator[TestTopics]:
    created = create_topics(medpubsub_kafka, partitions=PARTITIONS)
    yield created
    delete_topics(created)


def test_partitions_handed_over_by_a_maker_that_left_do_not_keep_the_other(
    forty_partitions: TestTopics, service: ServiceFactory
) -> None:
    topics = forty_partitions
    leaves = service(
        "medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=LEAVES_FIRST_IDLE_S)
    )
    leaves.wait_for_output(STARTED, timeout_s=30)
    stays = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=STAYS_IDLE_S))
    assert leaves.wait_exit(timeout_s=60) == 0, leaves.output()
    left_at = time.monotonic()
    assert "idle for" in leaves.output()
    # The maker that left gave half of its partitions to the other when it joined, and the rest
    # when it left: the other registered partitions it never held, after the first one left.
    leaves.wait_for_output(r"revoked ", timeout_s=1)
    stays.wait_for_output(r"assigned [\s\S]* assigned ", timeout_s=30)

    assert stays.wait_exit(timeout_s=STAYS_IDLE_S + 30) == 0, stays.output()
    stayed_s = time.monotonic() - left_at
    # Had registering those partitions reset its idle time, it could not have left sooner than
    # its whole timeout after the other maker.
    assert stayed_s < STAYS_IDLE_S, (
        f"the maker stayed {stayed_s:.1f} s after the other left (its idle timeout is "
        f"{STAYS_IDLE_S} s):\n{stays.output()}"
    )
