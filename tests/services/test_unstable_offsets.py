"""A maker that takes a partition whose offset commit is still pending starts from that commit.

The new owner of a partition reads the group's committed offset with require_stable: while a
transaction that commits the partition's offset is still open (its maker was killed mid-commit,
or is still committing under load), the broker answers UNSTABLE_OFFSET_COMMIT. librdkafka (2.16)
retries that a few times; when its retries run out, or its assignment changed meanwhile (a
rebalance wave), it starts the partition with no offset at all, and `auto.offset.reset=earliest`
reads it again from its first record: every order on it made again, by a second maker. At 40
patients that duplicated the first orders of the partitions moved during the scale-out.

The makers therefore run with `auto.offset.reset=error` and look the committed offset up
themselves, waiting for it to be stable (maker.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from medpubsub.kafka_clients import common_config, consumer_config
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.waiting import wait_until

from .kafka_io import (
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    create_topics,
    delete_topics,
    produce,
)

# The killed maker's transaction stays open this long (the makers' own bound is 10 s or more).
ZOMBIE_TRANSACTION_TIMEOUT_MS = 12_000


@pytest.fixture
def two_partitions(medpubsub_kafka: str) -> Iterator[TestTopics]:
    """Orders on partition 0; partition 1 is there to be moved to another maker."""
    created = create_topics(medpubsub_kafka, partitions=2)
    yield created
    delete_topics(created)


def leave_a_pending_offset_commit(topics: TestTopics, offset: int) -> Producer:
    """What a maker killed between `send_offsets_to_transaction` and its commit leaves behind.

    A member of the makers' group owns the partition, commits `offset` in a transaction that it
    never ends, and leaves the group. The returned producer keeps the transaction open until the
    broker aborts it (ZOMBIE_TRANSACTION_TIMEOUT_MS).
    """
    member = Consumer(consumer_config(topics.kafka, "test-zombie", topics.group))
    member.subscribe([topics.orders])
    wait_until(
        lambda: (member.poll(0.2), member.assignment())[1],
        lambda owned: any(tp.partition == 0 for tp in owned),
        30,
        f"the zombie member owning {topics.orders}[0]",
        interval_s=0,
    )
    producer = Producer(
        common_config(topics.kafka, "test-zombie")
        | {
            "transactional.id": f"test-zombie-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": ZOMBIE_TRANSACTION_TIMEOUT_MS,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.send_offsets_to_transaction(
        [TopicPartition(topics.orders, 0, offset)], member.consumer_group_metadata(), 30
    )
    member.close()
    return producer


def test_a_partition_taken_over_while_its_offset_commit_is_pending_is_not_read_again(
    two_partitions: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    topics = two_partitions
    made_first = [an_order(tabs_count=1) for _ in range(2)]
    produce(topics.bootstrap, topics.orders, [order.to_bytes() for order in made_first])
    first = service(
        "medicine",
        topics.environment(MEDICINE_MAX_ORDERS=len(made_first), MEDICINE_IDLE_TIMEOUT_SECONDS=20),
    )
    assert first.wait_exit(timeout_s=60) == 0, first.output()
    assert committed_offset(topics) == 2
    # The next order is being committed by a maker that is then killed: offset 3 pending.
    left_open = an_order(tabs_count=1)
    produce(topics.bootstrap, topics.orders, [left_open.to_bytes()])
    zombie = leave_a_pending_offset_commit(topics, offset=3)
    try:
        settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 20}
        second = service("medicine", topics.environment(**settings))
        wait_until(
            lambda: group_assignment(topics.kafka, topics.group, topics.orders),
            lambda seen: seen.members_with_partitions == 1 and seen.fully_assigned,
            30,
            "the second maker owning both partitions",
        )
        # A third maker joins while the second still waits for partition 0's offset to be
        # stable: partition 1 moves, which changes the second maker's assignment mid-wait (a
        # rebalance wave, as at every scale-out).
        third = service("medicine", topics.environment(**settings))
        for maker in (second, third):
            assert maker.wait_exit(timeout_s=90) == 0, maker.output()
    finally:
        with contextlib.suppress(KafkaException):  # the broker has aborted it by now (fenced)
            zombie.abort_transaction(10)
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    tabs = Counter(str(record["tab_id"]) for record in committed)
    orders = [*made_first, left_open]
    # The zombie's transaction was aborted, so the order after the two committed ones is made,
    # once, and those two are not made again.
    assert tabs == Counter(f"{order.order_id}:0" for order in orders), (
        second.output(),
        third.output(),
    )
    assert committed_offset(topics) == 3
