"""Makers that go idle together leave together (system/medicine/idle.py), on a real broker, and a
maker given partitions as it leaves does not stay for them.

When a maker leaves, the makers still there are given its partitions. Registering them must not
start their idle time again: if it did, every maker that left would keep the others for another
full idle timeout, and a scale-in would go one wave at a time (46 s for eight makers with a 10 s
timeout on the cluster).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.committed import STABLE_OFFSET_TIMEOUT_S
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.waiting import wait_until

from .in_process import InProcessMaker, in_process_maker
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


@pytest.fixture
def two_partitions(medpubsub_kafka: str) -> Iterator[TestTopics]:
    created = create_topics(medpubsub_kafka, partitions=2)
    yield created
    delete_topics(created)


def _assigned(maker: InProcessMaker) -> int:
    maker.step()
    return len(maker.consumer.assignment())


def test_a_partition_given_to_a_maker_as_it_leaves_does_not_keep_it(
    two_partitions: TestTopics, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen in four of five overload demos at scale-in: two makers go idle together; the first
    to leave hands its partition to the other between that one's last poll and its own close, so
    `consumer.close()` serves the assignment. Reading the committed offsets of a closing consumer
    times out at every try, and the maker stayed in `on_assign` for STABLE_OFFSET_TIMEOUT_S."""
    topics = two_partitions
    caplog.set_level(logging.INFO, logger="medpubsub.medicine")
    leaving = in_process_maker(topics, f"leaving-{uuid.uuid4().hex[:6]}", tab_seconds=1.0)
    other = Consumer(consumer_config(topics.kafka, "scale-in-test-other", topics.group))
    other_left = False
    try:
        leaving.maker.subscribe(topics.orders)
        wait_until(
            lambda: _assigned(leaving), lambda n: n == 2, 30, "the first maker's 2 partitions"
        )
        other.subscribe([topics.orders])

        def split() -> tuple[int, int]:
            other.poll(0.05)
            return _assigned(leaving), len(other.assignment())

        wait_until(split, lambda seen: seen == (1, 1), 30, "one partition each")

        # `leaving` polls no more, as a maker settling before its close; the other leaves.
        other.close()
        other_left = True
        wait_until(
            lambda: group_assignment(topics.kafka, topics.group, topics.orders),
            lambda group: group.members_with_partitions == 1 and group.fully_assigned,
            30,
            "the coordinator to give the leaving maker the other's partition",
        )
        closing = threading.Thread(target=leaving.maker.close, name="close", daemon=True)
        closing.start()
        closing.join(STABLE_OFFSET_TIMEOUT_S / 2)
        assert not closing.is_alive(), (
            f"the maker's close was still running {STABLE_OFFSET_TIMEOUT_S / 2:.0f} s on:"
            f"\n{caplog.text}"
        )
    finally:
        if not other_left:
            other.close()
        leaving.maker.close()  # once only: a close already under way makes this return
    # The assignment did reach the maker inside its close (else the test proved nothing).
    assert "while leaving; not started" in caplog.text, caplog.text
