"""A maker commits an order only while the order's partition is still its own.

A starved maker (CPU, a long GC-like pause, SIGSTOP) misses its heartbeats: the group coordinator
expires its session and gives its partitions to another maker, which makes the same orders again.
When the starved maker wakes up, its order threads are still in the middle of those orders. Had
they committed, the order would be made twice: the group coordinator accepts a transactional offset
commit from a member at its current epoch whatever partition it names (Kafka 4.3), and the maker
rejoins the group within a heartbeat of waking up.

SIGSTOP stands for the starved CPU here: nothing of the maker runs, not even librdkafka's
heartbeats, exactly as on a machine at load 26.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

from medpubsub.messages import Order

from .kafka_io import ReaderFactory, ServiceFactory, TestTopics, committed_offset, produce

STARTED = r"medicine (?P<name>\S+): taking orders"


def an_order(tabs_count: int) -> Order:
    return Order(
        order_id=str(uuid.uuid4()),
        patient_id="patient-s",
        tabs_count=tabs_count,
        ordered_at_ns=time.time_ns(),
    )


def test_a_maker_whose_session_expires_mid_order_does_not_commit_it(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # One worker: the order's 6 tabs are made one after the other (12 s), so the first maker is
    # still making it long after it wakes up and has rejoined the group.
    order = an_order(tabs_count=6)
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 20}
    first = service("medicine", topics.environment(MEDICINE_MAX_WORKERS=1, **settings))
    first_name = first.wait_for_output(STARTED, timeout_s=15)["name"]
    first.wait_for_output(rf"making order {order.order_id}", timeout_s=20)
    # The second maker owns nothing (one partition) until the first one's session expires.
    second = service("medicine", topics.environment(MEDICINE_MAX_WORKERS=1, **settings))
    second_name = second.wait_for_output(STARTED, timeout_s=15)["name"]

    os.kill(first.pid, signal.SIGSTOP)
    try:
        # Frozen past its session (6 s): the partition moves, and the second maker makes the order.
        second.wait_for_output(rf"making order {order.order_id}", timeout_s=40)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    for maker in (first, second):
        assert maker.wait_exit(timeout_s=90) in (0, 1), maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    tabs = Counter(str(record["tab_id"]) for record in committed)
    expected = Counter(f"{order.order_id}:{index}" for index in range(order.tabs_count))
    makers = {str(record["maker"]) for record in committed}
    assert tabs == expected, (makers, first.output(), second.output())
    # The order is the second maker's: the first lost its partition before it could commit.
    assert makers == {second_name} != {first_name}
    assert committed_offset(topics) == 1
