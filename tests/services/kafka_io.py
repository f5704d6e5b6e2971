"""What the service tests do with Kafka and with service processes: real clients, no mocks.

Each test gets its own topics and consumer group (`TestTopics`), so tests never see each other's
records; services run as subprocesses with those names in their environment and are always
stopped by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from medpubsub.kafka_clients import common_config, reader_config
from medpubsub.medicine.sweep import Sweep
from medpubsub.messages import Order
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes
from pytest_medpubsub.waiting import wait_until

# librdkafka's informational lines (an admin client purging its queue on close) are noise here.
QUIET = {"log_level": 4}

# Variables a developer's shell may export that would leak into the services under test.
_SERVICE_PREFIXES = ("MEDPUBSUB_", "ORBITAL_", "MEDICINE_")
_LEAKY = ("KUBERNETES_SERVICE_HOST", "HOSTNAME")

# What a maker prints once it has joined its group (its name is the tabs' `maker`).
STARTED = r"medicine (?P<name>\S+): taking orders"


def an_order(tabs_count: int, patient_id: str = "patient-a") -> Order:
    """A new order (fresh id) placed now."""
    return Order(
        order_id=str(uuid.uuid4()),
        patient_id=patient_id,
        tabs_count=tabs_count,
        ordered_at_ns=time.time_ns(),
    )


def tab_counts(records: list[dict[str, object]]) -> Counter[str]:
    """How often each tab id was delivered."""
    return Counter(str(record["tab_id"]) for record in records)


def expected_tabs(*orders: Order) -> Counter[str]:
    """Each tab of `orders`, once."""
    return Counter(
        f"{order.order_id}:{index}" for order in orders for index in range(order.tabs_count)
    )


def service_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without service settings, plus `settings`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SERVICE_PREFIXES) and name not in _LEAKY
    }
    return inherited | dict(settings)


@dataclass(frozen=True)
class TestTopics:
    """A test's own orders, deliveries and dead-letter topics and its maker group."""

    __test__ = False  # not a test class, despite its name

    bootstrap: str
    orders: str
    deliveries: str
    dlq: str
    group: str

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(kafka_bootstrap=self.bootstrap)

    @property
    def sweep(self) -> Sweep:
        """What the makers' producers sweep on these topics (system/medicine/sweep.py)."""
        return Sweep((self.deliveries, self.dlq))

    def environment(self, **settings: str | float) -> dict[str, str]:
        """The environment of a service on these topics, with extra settings by variable name."""
        names = {
            "MEDPUBSUB_KAFKA_BOOTSTRAP": self.bootstrap,
            "MEDPUBSUB_ORDERS_TOPIC": self.orders,
            "MEDPUBSUB_DELIVERIES_TOPIC": self.deliveries,
            "MEDPUBSUB_DLQ_TOPIC": self.dlq,
            "MEDICINE_GROUP_ID": self.group,
        }
        return service_environment(names | {name: str(value) for name, value in settings.items()})


def create_topics(
    bootstrap: str, partitions: int = 1, dlq_config: Mapping[str, str] | None = None
) -> TestTopics:
    """Fresh topics (names unique to the test) and a fresh group name."""
    suffix = uuid.uuid4().hex[:10]
    topics = TestTopics(
        bootstrap,
        orders=f"test.orders.{suffix}",
        deliveries=f"test.deliveries.{suffix}",
        dlq=f"test.dlq.{suffix}",
        group=f"test-medicine-{suffix}",
    )
    admin = AdminClient(common_config(topics.kafka, "test-admin") | QUIET)
    futures = admin.create_topics(
        [
            NewTopic(topics.orders, partitions, 1),
            NewTopic(topics.deliveries, partitions, 1),
            NewTopic(topics.dlq, partitions, 1, config=dict(dlq_config or {})),
        ]
    )
    for future in futures.values():
        future.result(timeout=30)
    return topics


def delete_topics(topics: TestTopics) -> None:
    admin = AdminClient(common_config(topics.kafka, "test-admin") | QUIET)
    names = [topics.orders, topics.deliveries, topics.dlq]
    for future in admin.delete_topics(names, operation_timeout=10).values():
        with contextlib.suppress(KafkaException):  # best effort: the broker goes with the session
            future.result(timeout=15)


def committed_offset(topics: TestTopics, partition: int = 0) -> int:
    """The maker group's committed offset on the orders partition (-1001 when none)."""
    admin = AdminClient(common_config(topics.kafka, "test-admin") | QUIET)
    request = ConsumerGroupTopicPartitions(topics.group, [TopicPartition(topics.orders, partition)])
    result = admin.list_consumer_group_offsets([request])[topics.group].result(timeout=15)
    [committed] = result.topic_partitions
    return int(committed.offset)


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | None],
    key: bytes | None = b"test",
    partition: int = 0,
) -> list[int]:
    """Produce `values` in order to `partition` and return their offsets once acknowledged."""
    producer = Producer(
        common_config(KafkaSettings(kafka_bootstrap=bootstrap), "test-producer")
        | {"acks": "all", "enable.idempotence": True, "linger.ms": 0}
    )
    offsets: dict[int, int] = {}
    errors: list[str] = []

    def delivered(index: int) -> Any:
        def report(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                offsets[index] = message.offset()

        return report

    for index, value in enumerate(values):
        producer.produce(topic, value, key=key, partition=partition, on_delivery=delivered(index))
    remaining = producer.flush(30)
    assert not errors, f"could not produce: {errors}"
    assert remaining == 0, f"{remaining} records not acknowledged in 30 s"
    return [offsets[index] for index in sorted(offsets)]


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def json(self) -> dict[str, Any]:
        assert self.value is not None
        document = json.loads(self.value)
        assert isinstance(document, dict)
        return document


class TopicReader:
    """Reads a whole topic from the beginning, without a group, keeping every record seen.

    `committed_only=False` reads uncommitted transactional records too (read_uncommitted): how a
    test sees that a maker is mid-order.
    """

    def __init__(self, bootstrap: str, topic: str, *, committed_only: bool = True) -> None:
        kafka = KafkaSettings(kafka_bootstrap=bootstrap)
        config = reader_config(kafka, f"test-reader-{uuid.uuid4().hex[:8]}")
        if not committed_only:
            config["isolation.level"] = "read_uncommitted"
        self.topic = topic
        self.records: list[Record] = []
        self._consumer = Consumer(config)
        partitions = self._partition_numbers(timeout_s=10)
        self._partitions = [TopicPartition(topic, partition) for partition in partitions]
        self._consumer.assign(
            [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions]
        )

    def _partition_numbers(self, timeout_s: float) -> list[int]:
        """The topic's partitions, once its metadata lists them: a topic created a moment ago can
        be listed with an error and no partition yet, and a reader assigned to none sees nothing.
        """

        def partitions() -> list[int]:
            found = self._consumer.list_topics(self.topic, timeout=timeout_s).topics[self.topic]
            if found.error is not None:
                raise KafkaException(found.error)
            return sorted(found.partitions)

        return wait_until(partitions, bool, timeout_s, f"the partitions of {self.topic}")

    def read(self, wait_s: float = 0.2) -> list[Record]:
        """Take what arrived (waiting up to `wait_s` for the first record) and return all so far."""
        timeout = wait_s
        while (message := self._consumer.poll(timeout)) is not None:
            timeout = 0
            partition, offset, error = message.partition(), message.offset(), message.error()
            if error is not None:
                raise KafkaException(error)
            assert partition is not None
            assert offset is not None
            self.records.append(Record(partition, offset, message.key(), message.value()))
        return list(self.records)

    def wait_for_count(self, count: int, timeout_s: float) -> list[Record]:
        """Read until at least `count` records were seen; fail naming what was seen last."""
        return wait_until(
            self.read,
            lambda records: len(records) >= count,
            timeout_s,
            f"{count} records on {self.topic}",
            interval_s=0,
        )

    def read_to_end(self, timeout_s: float) -> list[Record]:
        """Read every record up to the end offsets as of now; return all records seen.

        The end is the last stable offset for read_committed (the high watermark otherwise), so
        after a maker's transaction committed this sees every record it wrote: a duplicate cannot
        hide behind a count that was merely reached. (librdkafka moves the position past
        transaction markers, so the position reaches the end offset exactly.)
        """
        ends = {
            partition.partition: self._consumer.get_watermark_offsets(partition, timeout=10)[1]
            for partition in self._partitions
        }

        def behind() -> dict[int, int]:
            self.read(wait_s=0.1)
            return {
                position.partition: ends[position.partition] - position.offset
                for position in self._consumer.position(self._partitions)
                if 0 < ends[position.partition] > position.offset
            }

        wait_until(
            behind, lambda lag: not lag, timeout_s, f"the end offsets {ends} of {self.topic}"
        )
        return list(self.records)

    def documents(self) -> list[dict[str, Any]]:
        return [record.json() for record in self.records]

    def close(self) -> None:
        self._consumer.close()


class Service:
    """A `medpubsub patient` / `medpubsub medicine` process, its output in a file."""

    def __init__(self, command: str, environment: Mapping[str, str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.process = processes.spawn(
            [sys.executable, "-m", "medpubsub", command], env=environment, log_path=log_path
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """stdout and stderr so far (interleaved as written)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_output(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """Wait until the output matches the regular expression `pattern`; return the match."""

        def observe() -> str:
            if self.process.poll() is not None and not re.search(pattern, self.output()):
                raise AssertionError(
                    f"{self.command} exited with {self.process.returncode}:\n{self.output()}"
                )
            return self.output()

        text = wait_until(
            observe,
            lambda out: re.search(pattern, out) is not None,
            timeout_s,
            f"{pattern!r} in the output of {self.command}",
            interval_s=0.05,
        )
        match = re.search(pattern, text)
        assert match is not None
        return match

    def wait_exit(self, timeout_s: float) -> int:
        """Wait for the process to end by itself; fail with its output if it does not."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.command} still running after {timeout_s:g} s:\n{self.output()}"
            ) from None

    def signal_and_wait(self, signal_number: int, timeout_s: float) -> int:
        """Send a signal and wait for the exit status; fail with the output if it does not end."""
        os.kill(self.pid, signal_number)
        return self.wait_exit(timeout_s)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL; by pid, whatever state the process is in."""
        processes.stop(self.process, grace_s=5)


ReaderFactory = Callable[..., TopicReader]
ServiceFactory = Callable[..., Service]


def tabs_only(records: list[Record]) -> list[Record]:
    """The records that are tabs: a read_uncommitted reader also sees the empty records of the
    producers' sweeps (system/medicine/sweep.py), which are aborted and hold nothing."""
    return [record for record in records if record.value]


def maker_mid_order(
    topics: TestTopics, service: ServiceFactory, order: Order, **settings: str | float
) -> Service:
    """Place `order`, start a maker on `topics` with `settings`; return it once it says it is
    making the order (its tabs are being made, none committed)."""
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    maker = service("medicine", topics.environment(**settings))
    maker.wait_for_output(rf"making order {order.order_id}", timeout_s=20)
    return maker


def makers_of_tabs_made_once(reader: ReaderFactory, topics: TestTopics, order: Order) -> set[str]:
    """Who made `order`'s committed tabs, once each of them is found there exactly once."""
    return makers_of_orders_made_once(reader, topics, order)[order.order_id]


def makers_of_orders_made_once(
    reader: ReaderFactory, topics: TestTopics, *orders: Order
) -> dict[str, set[str]]:
    """Who made each order's committed tabs (by order id), once every tab of `orders`, and
    nothing else, is found there exactly once."""
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]
    counts = tab_counts(committed)
    assert counts == expected_tabs(*orders), f"committed tabs: {counts}"
    makers: dict[str, set[str]] = {order.order_id: set() for order in orders}
    for record in committed:
        makers[str(record["order_id"])].add(str(record["maker"]))
    return makers
