"""A transaction whose markers Kafka lost is ended as aborted by the next producer of its id.

The fault, on purpose (system/medicine/sweep.py says what it is): a partition's producer leaves a
transaction open, its tab written and its offset commit sent, and the only broker is SIGKILLed
and started again at once. The transaction times out after the restarted coordinator has loaded
it and before the broker has registered again, so its abort markers wait for the broker's own
listener, and are dropped when the controller fences the previous incarnation. The test checks
in the broker's log that they were.

The partition's next owner then registers the way every maker does (`PartitionProducers`), reads
where the partition stands, and makes the order again. Without the sweep, measured 4 times out of
4 with this fault: the committed offset never reads as stable, and the order's tab is seen twice
(the new commit's marker commits the lost transaction's tab too).
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.committed import committed_starts
from medpubsub.medicine.producers import (
    PartitionProducers,
    partition_transactional_id,
    transactional_factory,
)
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.waiting import wait_until

from .kafka_io import ReaderFactory, committed_offset, create_topics

# Short enough that the left transaction times out inside the restarted broker's unregistered
# window (from its coordinator's load, 2-4 s after the start, to the fencing, 9 s after it).
TRANSACTION_TIMEOUT_MS = 6_000
# What Kafka 4.3 logs when it drops a transaction's markers.
MARKERS_DROPPED = "likely deleted already and hence can be skipped"
TAB = b"the only tab of the order at offset 0"


@pytest.mark.kafka
def test_a_transaction_whose_markers_were_lost_is_aborted_and_its_order_made_once(
    own_broker: EmbeddedKafka, reader: ReaderFactory
) -> None:
    topics = create_topics(own_broker.bootstrap_servers)
    key = (topics.orders, 0)
    name = f"lost-markers-{uuid.uuid4().hex[:6]}"
    group = Consumer(consumer_config(topics.kafka, client_id=name, group_id=topics.group))
    make_producer = transactional_factory(
        topics.kafka, name, transaction_timeout_ms=TRANSACTION_TIMEOUT_MS
    )
    left_open = make_producer(partition_transactional_id(topics.group, key))
    left_open.init_transactions(30)
    left_open.begin_transaction()
    left_open.produce(topics.deliveries, TAB, key=b"order-0")
    left_open.flush(10)
    past_order = TopicPartition(topics.orders, 0, 1)
    left_open.send_offsets_to_transaction([past_order], group.consumer_group_metadata(), 10)
    own_broker.kill()
    own_broker.start()  # returns once it serves clients, which is after the fencing
    dropped = [
        line
        for line in own_broker.log_file.read_text(errors="replace").splitlines()
        if MARKERS_DROPPED in line and topics.deliveries in line
    ]
    assert dropped, (
        f"the fault did not happen: Kafka wrote the markers of the left transaction (no"
        f" '{MARKERS_DROPPED}' line for {topics.deliveries} in {own_broker.log_file})"
    )

    producers = PartitionProducers(
        make_producer, topics.group, stopping=lambda: False, sweep=topics.sweep
    )
    producers.begin([key], group.consumer_group_metadata)
    registration = producers.get(key)
    assert registration is not None
    assert registration.registered.wait(60), "the partition's producer did not register in 60 s"
    assert registration.problem is None, registration.problem

    def stable_start() -> int | None:
        try:
            return committed_starts(group, [key]).get(key)
        except KafkaException:
            return None  # still unstable: the read timed out

    start = wait_until(
        stable_start, lambda found: found is not None, 30, f"a stable committed offset of {key}"
    )
    assert start == OFFSET_BEGINNING  # the lost transaction's offset was never committed

    producer = registration.producer
    assert producer is not None
    producer.begin_transaction()
    producer.produce(topics.deliveries, TAB, key=b"order-0")
    producer.send_offsets_to_transaction([past_order], group.consumer_group_metadata(), 10)
    producer.commit_transaction(10)
    producers.drop_all()
    group.close()

    tabs = [record.value for record in reader(topics, topics.deliveries).read_to_end(30)]
    assert tabs == [TAB]
    assert committed_offset(topics) == 1
