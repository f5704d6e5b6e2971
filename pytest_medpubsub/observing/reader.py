"""Reading the system's topics as a client would: every partition from its beginning,
`read_committed`, with no consumer group, and knowing how far each partition has been read.

"How far" is what lets the observer say it has read everything committed before a question: per
partition, the offset up to which everything has been read (a record's offset + 1, or the end
offset a partition-EOF event reports, which also covers transaction markers), compared with the
broker's last stable offsets. Topics and partitions that appear later (created after the observer
started, or added) are picked up by a periodic metadata refresh.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, OffsetSpec

from medpubsub.kafka_clients import common_config, reader_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.waiting import wait_until

Partition = tuple[str, int]
Handler = Callable[[KafkaMessage, int], None]
"""Called with each record read and the wall clock (ns) when it was read."""

# Topics are looked up again this often, so that topics created after the observer started (or
# partitions added) are read too; more often while one of them is still missing.
METADATA_REFRESH_S = 5.0
MISSING_TOPIC_REFRESH_S = 1.0
_POLL_TIMEOUT_S = 0.1
_POLL_BATCH = 500


class TopicsReader:
    """Reads `topics` from the beginning on its own thread and hands each record to `handle`."""

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str], handle: Handler) -> None:
        self._kafka = kafka
        self.topics = tuple(topics)
        self._handle_record = handle
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._admin: AdminClient | None = None
        self._client_id = ""
        self.failure: BaseException | None = None
        # Guarded by _lock: read by the questions, written by the reading thread.
        self._read_to: dict[Partition, int] = {}
        self._assigned: set[Partition] = set()
        # Owned by the reading thread only.
        self._next_refresh = 0.0
        self._last_error = ""

    def connect(self, timeout_s: float) -> None:
        """Connect and assign every partition there is; `WaitTimeout` when Kafka cannot be
        reached within `timeout_s`."""
        if self._consumer is not None:  # a second start would read everything twice
            raise RuntimeError("an observer starts once; create a new one to watch again")
        self._client_id = f"medpubsub-observer-{uuid.uuid4().hex[:8]}"
        config = quiet(reader_config(self._kafka, self._client_id))
        # Partition EOF events carry the offset where a partition's readable records end.
        config["enable.partition.eof"] = True
        consumer = Consumer(config)
        self._admin = self._new_admin()
        try:
            wait_until(
                lambda: consumer.list_topics(timeout=2.0),
                lambda metadata: True,
                timeout_s=timeout_s,
                describe=f"Kafka metadata from {self._kafka.kafka_bootstrap}",
            )
            self._consumer = consumer
            self._refresh_assignment()
        except BaseException:
            consumer.close()
            self._admin = None
            raise

    def run(self, stopping: threading.Event) -> None:
        """Read until `stopping` is set; a failure is kept in `failure` (the next question asked
        raises it) and ends the reading."""
        consumer = self._consumer
        assert consumer is not None
        try:
            while not stopping.is_set():
                if time.monotonic() >= self._next_refresh:
                    self._refresh_assignment_or_retry()
                for message in consumer.consume(_POLL_BATCH, _POLL_TIMEOUT_S):
                    self._handle(message)
        except BaseException as error:
            self.failure = error
            progress.say(f"observer: stopped reading Kafka: {error!r}")
        finally:
            consumer.close()

    def close(self) -> None:
        # librdkafka handles close when released; a kept one would log the broker's shutdown.
        self._admin = None

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise RuntimeError(
                f"the observer stopped reading Kafka: {self.failure!r}"
            ) from self.failure

    # -- how far ---------------------------------------------------------------------------------

    def end_offsets(self) -> dict[Partition, int]:
        """The last stable offset of every partition of the topics, asked of the broker now.

        The partitions are those the broker knows now, not only those assigned: a topic created
        just before the question (the reader's refresh has not seen it yet) holds records the
        reader has not read, and must count as behind until it has.
        """
        if self._admin is None:
            return {}
        metadata = self._admin.list_topics(timeout=10.0)
        with self._lock:
            known = set(self._assigned)
        for name in self.topics:
            topic = metadata.topics.get(name)
            if topic is not None and topic.error is None:
                known.update((name, partition) for partition in topic.partitions)
        partitions = sorted(known)
        if not partitions:
            return {}
        latest = OffsetSpec.latest()
        futures = self._admin.list_offsets(
            {TopicPartition(topic, partition): latest for topic, partition in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=10.0,
        )
        try:
            return {
                (tp.topic, tp.partition): future.result().offset for tp, future in futures.items()
            }
        except KafkaException:
            # After a broker restart an admin client can keep the old leader epochs and get
            # FENCED_LEADER_EPOCH for good (seen for minutes): the next try gets a fresh client.
            self._admin = self._new_admin()
            raise

    def records_behind(self, end_offsets: dict[Partition, int]) -> int:
        """Records up to `end_offsets` not read yet."""
        self.raise_if_failed()
        with self._lock:
            return sum(
                max(0, end - self._read_to.get(partition, 0))
                for partition, end in end_offsets.items()
            )

    # -- reading ---------------------------------------------------------------------------------

    def _new_admin(self) -> AdminClient:
        return AdminClient(quiet(common_config(self._kafka, self._client_id)))

    def _refresh_assignment_or_retry(self) -> None:
        """A metadata refresh that fails (the broker is down: chaos) is tried again next round."""
        try:
            self._refresh_assignment()
        except KafkaException as error:
            if str(error) != self._last_error:
                progress.say(f"observer: cannot refresh the topics' partitions yet: {error}")
                self._last_error = str(error)

    def _refresh_assignment(self) -> None:
        """Assign, from the beginning, every partition of the topics not assigned yet."""
        consumer = self._consumer
        assert consumer is not None
        metadata = consumer.list_topics(timeout=5.0)
        new: list[TopicPartition] = []
        missing = False
        with self._lock:
            known = set(self._assigned)
        for name in self.topics:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                missing = True
                continue
            for partition in topic.partitions:
                if (name, partition) not in known:
                    new.append(TopicPartition(name, partition, OFFSET_BEGINNING))
        if new:
            consumer.incremental_assign(new)
            with self._lock:
                self._assigned.update((tp.topic, tp.partition) for tp in new)
        refresh_s = MISSING_TOPIC_REFRESH_S if missing else METADATA_REFRESH_S
        self._next_refresh = time.monotonic() + refresh_s

    def _handle(self, message: KafkaMessage) -> None:
        error = message.error()
        if error is not None:
            self._handle_error(error, message)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:  # only error events lack them
            return
        # Recorded before it counts as read: "read up to date" then implies "in the ledger".
        self._handle_record(message, time.time_ns())
        self._advance((topic, partition), offset + 1)

    def _advance(self, partition: Partition, read_to: int) -> None:
        with self._lock:
            if read_to > self._read_to.get(partition, 0):
                self._read_to[partition] = read_to

    def _handle_error(self, error: KafkaError, message: KafkaMessage) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if error.code() == KafkaError._PARTITION_EOF:
            if topic is not None and partition is not None and offset is not None:
                self._advance((topic, partition), offset)
            return
        if error.fatal():
            raise KafkaException(error)
        # Transient (a broker restarting under chaos): librdkafka retries; say it once.
        if error.str() != self._last_error:
            self._last_error = error.str()
            progress.say(f"observer: Kafka reports {error.str()} (retrying)")
