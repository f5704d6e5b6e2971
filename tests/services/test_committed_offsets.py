"""Where a maker starts a partition while a transaction holds the partition's offset.

The offsets are read with an admin client (system/medicine/committed.py): the broker's answer per
partition, UNSTABLE_OFFSET_COMMIT while a transaction commits the offset, reaches the maker, and
the partition starts at its committed offset once the transaction has ended, never at the
pending one. Read through the consumer, librdkafka retried that answer until the call timed out
and the maker could only say "Local: Timed out".
"""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.committed import stable_starts
from medpubsub.medicine.producers import transactional_factory

from .kafka_io import TestTopics, group_offsets

# How long the read may find the partition unstable before it gives up, in the first read.
SHORT_WAIT_S = 2.0
COMMITTED, PENDING = 3, 7


def commit_in_transaction(producer: Producer, group: Consumer, offset: TopicPartition) -> None:
    producer.begin_transaction()
    producer.send_offsets_to_transaction([offset], group.consumer_group_metadata(), 10)
    producer.commit_transaction(10)


def test_an_offset_held_by_an_open_transaction_is_named_unstable_and_then_starts_where_committed(
    topics: TestTopics,
) -> None:
    name = f"committed-test-{uuid.uuid4().hex[:8]}"
    group = Consumer(consumer_config(topics.kafka, client_id=name, group_id=topics.group))
    producer = transactional_factory(topics.kafka, name)(f"{name}-tx")
    producer.init_transactions(30)
    partition = TopicPartition(topics.orders, 0)
    offsets = group_offsets(topics, name)
    try:
        commit_in_transaction(producer, group, TopicPartition(topics.orders, 0, COMMITTED))
        producer.begin_transaction()
        producer.send_offsets_to_transaction(
            [TopicPartition(topics.orders, 0, PENDING)], group.consumer_group_metadata(), 10
        )

        starts, unreadable = stable_starts(offsets, [partition], timeout_s=SHORT_WAIT_S)

        assert starts == []
        assert unreadable is not None
        assert f"{topics.orders}[0]" in unreadable, unreadable
        assert "UNSTABLE_OFFSET_COMMIT" in unreadable, unreadable

        producer.abort_transaction(10)
        starts, unreadable = stable_starts(offsets, [partition])

        assert unreadable is None
        assert [(tp.topic, tp.partition, tp.offset) for tp in starts] == [
            (topics.orders, 0, COMMITTED)
        ]
    finally:
        group.close()
