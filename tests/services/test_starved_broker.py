"""A broker starved of CPU mid-order: the orders in flight are still made exactly once.

What broke exactly-once at 40 patients: on two cores at load 26 the embedded broker's own KRaft
controller fenced its broker (its heartbeats came late for `broker.session.timeout.ms`). The only
broker fenced means every partition is leaderless for a moment, and Kafka 4.3's transaction
coordinator then completes the transactions it was committing without writing their markers to
the leaderless partitions ("Couldn't find leader endpoint ... likely deleted already and hence
can be skipped"). A transaction whose marker reached a tabs partition but not `__consumer_offsets`
is a made order whose offset never commits: the next maker makes it again, and the observer sees
its tabs from two makers. One whose tabs partition missed its marker hangs read_committed readers.

SIGSTOP of the broker's JVM stands for the starved CPU: nothing of the broker or its controller
runs for a few seconds, as on the starved machine, and then everything runs again at once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from medpubsub.kafka_clients import reader_config
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.waiting import wait_until

from .kafka_io import (
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    create_topics,
    produce,
)

PARTITIONS = 4
# The starved broker runs 20 ms of every second (2 % of a CPU) for this long: about what a JVM
# among 40 busy makers on two cores got at the worst of the overload.
STARVED_FOR_S = 10.0
RUNS_MS, STOPPED_MS = 20, 980


def starve(pid: int, duration_s: float) -> None:
    """Let process `pid` run `RUNS_MS` of every second for `duration_s`, then run freely.

    A duty cycle of SIGSTOP / SIGCONT: the fault itself, so its timings are the fault's
    parameters (not a wait for a condition). Bounded in time; the process is always left running.
    """
    deadline = time.monotonic() + duration_s
    try:
        while time.monotonic() < deadline:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(STOPPED_MS / 1000)
            os.kill(pid, signal.SIGCONT)
            time.sleep(RUNS_MS / 1000)
    finally:
        os.kill(pid, signal.SIGCONT)


def leader_epochs(topics: TestTopics, offsets: dict[int, int]) -> dict[int, int | None]:
    """The leader epoch each orders partition had when its record at `offsets` was written.

    A broker fenced and unfenced again leads its partitions at a higher epoch, and the records
    written after that carry it. Read from the records themselves, with a group-less reader.
    """
    consumer = Consumer(reader_config(topics.kafka, f"epochs-{uuid.uuid4().hex[:8]}"))
    seen: dict[int, int | None] = {}

    def read() -> dict[int, int | None]:
        while (message := consumer.poll(0.2)) is not None:
            partition = message.partition()
            if message.error() is None and partition is not None:
                seen.setdefault(partition, message.leader_epoch())
        return seen

    try:
        consumer.assign([TopicPartition(topics.orders, p, o) for p, o in offsets.items()])
        return wait_until(
            read,
            lambda found: len(found) == len(offsets),
            30,
            f"the records at {offsets} of {topics.orders}",
            interval_s=0,
        )
    finally:
        consumer.close()


def test_orders_in_flight_while_the_broker_is_starved_are_made_exactly_once(
    own_broker: EmbeddedKafka, service: ServiceFactory, reader: ReaderFactory
) -> None:
    topics = create_topics(own_broker.bootstrap_servers, partitions=PARTITIONS)
    orders = [an_order(tabs_count=3) for _ in range(2 * PARTITIONS)]
    for index, order in enumerate(orders):
        produce(topics.bootstrap, topics.orders, [order.to_bytes()], partition=index % PARTITIONS)
    epochs_before = leader_epochs(topics, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING))
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 10}
    first = service("medicine", topics.environment(**settings))
    # Every order in flight (24 tabs of 30 workers); their commits come 2 s after they start.
    first.wait_for_output(r"(making order(.|\n)*){8}", timeout_s=30)
    broker_pid = own_broker.pid
    assert broker_pid is not None

    starve(broker_pid, STARVED_FOR_S)
    # Whatever the first maker managed before and after the freeze, a second one makes the rest.
    first.wait_exit(timeout_s=90)
    second = service("medicine", topics.environment(**settings))
    assert second.wait_exit(timeout_s=90) == 0, second.output()
    # read_to_end reads read_committed up to the last stable offset: a transaction left without
    # its marker would hold it back, and this would fail naming what it saw last.
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    tabs = Counter(str(record["tab_id"]) for record in committed)
    expected = Counter(f"{o.order_id}:{i}" for o in orders for i in range(o.tabs_count))
    assert tabs == expected, (first.output(), second.output())
    assert [committed_offset(topics, p) for p in range(PARTITIONS)] == [2] * PARTITIONS
    # The cause itself: the broker was never fenced, so no partition was ever leaderless. A
    # record written now carries the leader epoch the partitions had before the freeze.
    probes = {
        p: produce(topics.bootstrap, topics.orders, [b"probe"], partition=p)[0]
        for p in range(PARTITIONS)
    }
    assert leader_epochs(topics, probes) == epochs_before
