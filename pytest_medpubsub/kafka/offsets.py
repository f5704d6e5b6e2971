"""The group's committed offsets and the log-end offsets of a topic: what KEDA's Kafka scaler reads.

Both worlds use this: the local platform feeds it to the KEDA arithmetic every poll, and every
platform's `lag()` is computed from it, so "lag" means the same thing in tests, reports and the
scaler.
"""

from __future__ import annotations

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.keda.scaler import PartitionOffsets
from pytest_medpubsub.waiting import wait_until

_INVALID = -1


class OffsetReader:
    """Reads a group's position on one topic; one admin client reused across polls."""

    def __init__(self, kafka: KafkaSettings, group: str, topic: str, timeout_s: float = 10.0):
        self.group = group
        self.topic = topic
        self._timeout_s = timeout_s
        client_id = f"medpubsub-offsets-{group}"
        self._admin = AdminClient(quiet(common_config(kafka, client_id)))
        # Committed offsets are read through a consumer of the group that never subscribes (so
        # it never joins): the admin API's `list_consumer_group_offsets` crashes the process
        # when a restarted broker answers NOT_COORDINATOR (librdkafka #5040).
        # The last committed offsets, without require_stable: a transaction in flight is not
        # progress yet, and one left hanging by a broker restart would otherwise time every read
        # out for ever (system/dispatcher/service.py says when that happens).
        self._group_reader = Consumer(
            quiet(common_config(kafka, client_id))
            | {
                "group.id": group,
                "enable.auto.commit": False,
                "isolation.level": "read_uncommitted",
            }
        )

    def partitions(self) -> list[PartitionOffsets]:
        """Committed (−1 when none) and log-end offset of every partition of the topic."""
        metadata = self._admin.list_topics(self.topic, timeout=self._timeout_s)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            raise RuntimeError(f"topic {self.topic} is not available: {topic and topic.error}")
        partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
        committed = self._committed(partitions)
        ends = self._admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=self._timeout_s,
        )
        return [
            PartitionOffsets(
                topic=self.topic,
                partition=tp.partition,
                committed=committed.get(tp.partition, _INVALID),
                end=ends[tp].result(timeout=self._timeout_s).offset,
            )
            for tp in partitions
        ]

    def total_lag(self) -> int:
        """Lag as the makers' ScaledJob counts it (offsetResetPolicy earliest: an uncommitted
        partition counts its whole log)."""
        return sum(p.end - max(p.committed, 0) for p in self.partitions())

    def _committed(self, partitions: list[TopicPartition]) -> dict[int, int]:
        committed = self._group_reader.committed(partitions, timeout=self._timeout_s)
        return {tp.partition: tp.offset if tp.offset >= 0 else _INVALID for tp in committed}

    def close(self) -> None:
        self._group_reader.close()

    def __enter__(self) -> OffsetReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def start_new_group_at_end(kafka: KafkaSettings, group: str, topic: str) -> bool:
    """Commit the log end of `topic` for `group` if the group never committed (True if so).

    The groups read from the earliest offset when they have none, which is right on a topic of
    their own; a second design run on a broker the first used (the benchmark, `make e2e-here`)
    would instead make every order of the first run again.
    """
    with OffsetReader(kafka, group, topic) as offsets:
        partitions = offsets.partitions()
    if any(p.committed >= 0 for p in partitions) or all(p.end == 0 for p in partitions):
        return False
    _commit_ends(kafka, group, partitions)
    return True


def move_group_to_end(kafka: KafkaSettings, group: str, topic: str, timeout_s: float = 30.0) -> int:
    """Commit the log end of `topic` for `group`, whatever it committed before; return how many
    records that skipped.

    For a run that shares its broker with earlier runs (the benchmark, one design after the
    other): the orders on the topic are theirs, each made or counted lost by its own run, and a
    group that had fallen behind (another design's, or an overloaded run's) would otherwise
    start with all of them as its backlog. Kafka changes a group's offsets only while it has no
    member, and a member that left uncleanly counts until its session expires: so this retries
    until `timeout_s`.
    """
    with OffsetReader(kafka, group, topic) as offsets:
        partitions = offsets.partitions()
    skipped = sum(p.end - max(p.committed, 0) for p in partitions)
    if skipped <= 0:
        return 0

    def attempt() -> str | None:
        try:
            _commit_ends(kafka, group, partitions)
        except KafkaException as error:
            return str(error)
        return None

    wait_until(attempt, lambda problem: problem is None, timeout_s, f"group {group} at the log end")
    return skipped


def _commit_ends(kafka: KafkaSettings, group: str, partitions: list[PartitionOffsets]) -> None:
    admin = AdminClient(quiet(common_config(kafka, f"medpubsub-offsets-{group}-setup")))
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(p.topic, p.partition, p.end) for p in partitions]
    )
    admin.alter_consumer_group_offsets([request])[group].result(timeout=30)
