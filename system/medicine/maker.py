"""Turn one orders-topic record into tabs (or a dead letter) inside one Kafka transaction.

The transaction holds everything the record leads to — every tab, or the dead letter — and the
consumer group's offset past the record (`send_offsets_to_transaction`). Either all of it becomes
visible to read_committed readers or none of it: a maker killed mid-order leaves nothing behind
and the record is still uncommitted, so the next maker makes the whole order again, once.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from medpubsub.medicine.pool import Halted, ThreadPoolController
from medpubsub.medicine.watchdog import Watchdog, exit_at_once
from medpubsub.messages import (
    DeadLetter,
    Order,
    Rejection,
    Tab,
    dead_letter_payload,
    parse_order,
)

log = logging.getLogger("medpubsub.medicine")

# librdkafka retries most transactional requests itself; these bound how long we keep asking. A
# commit takes milliseconds: one still going after seconds means the coordinator is out of reach,
# and the broker aborts the transaction soon anyway (transaction.timeout.ms: making time + 8 s).
COMMIT_TIMEOUT_S = 5.0
ABORT_TIMEOUT_S = 5.0
# How long past those bounds the watchdog lets a call block before it ends the process (#5456).
WATCHDOG_GRACE_S = 2.0
# How often the group is served while an order's tabs are being made.
GROUP_POLL_S = 0.1


class Outcome(enum.Enum):
    """What became of a record."""

    MADE = "made"  # the order's tabs and offset are committed
    DEAD_LETTERED = "dead-lettered"  # the dead letter and offset are committed
    RETRY = "retry"  # aborted after a recoverable error; the consumer is back on the record
    INTERRUPTED = "interrupted"  # a stop request came mid-order; the transaction is aborted


class MakerFailed(Exception):
    """The maker cannot go on (fenced, fatal client error, a failed abort): exit non-zero.

    Nothing is lost: the record's offset is not committed, so the next maker takes it again.
    """


@dataclass
class _InProgress:
    """The order being made: its worker thread and, once settled early, how it ended."""

    partition: TopicPartition  # the order's partition at the offset after the record
    worker: threading.Thread
    failure: list[BaseException]
    settled: Outcome | None = None  # set when a revocation made us finish it inside the callback


@dataclass(frozen=True)
class Destinations:
    deliveries_topic: str
    dlq_topic: str


class Maker:
    """Makes records into tabs with one transactional producer; one record at a time."""

    def __init__(
        self,
        name: str,
        *,
        consumer: Consumer,
        producer: Producer,
        destinations: Destinations,
        pool: ThreadPoolController,
        tab_seconds: float,
        stopping: Callable[[], bool],
        watchdog: Watchdog | None = None,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.producer = producer
        self.destinations = destinations
        self.pool = pool
        self.tab_seconds = tab_seconds
        self.stopping = stopping
        self.watchdog = watchdog or Watchdog(
            name, on_expiry=functools.partial(exit_at_once, last_words=self.leave_group)
        )
        self._current: _InProgress | None = None
        self._in_rebalance = False

    def handle(self, record: Message) -> Outcome:
        """Make `record` (a polled, error-free message) into tabs or a dead letter, transactionally.

        Raises `MakerFailed` when the producer cannot be used any more.
        """
        topic, partition, offset = _coordinates(record)
        parsed = parse_order(record.value(), topic, partition, offset)
        started = time.monotonic()
        try:
            self.producer.begin_transaction()
            if isinstance(parsed, Rejection):
                self._dead_letter(record, parsed)
            else:
                log.info(
                    "%s: making order %s (%d tabs) from %s[%d]@%d",
                    self.name,
                    parsed.order_id,
                    parsed.tabs_count,
                    topic,
                    partition,
                    offset,
                )
                settled = self._make_serving_the_group(record, parsed)
                if settled is not None:
                    return settled
            self._commit(_next_offset(record))
        except Halted:
            log.info("%s: stopping mid-order at %s[%d]@%d", self.name, topic, partition, offset)
            self._abort()
            return Outcome.INTERRUPTED
        except (KafkaException, BufferError) as exception:
            error = _kafka_error(exception)
            if error is not None and error.fatal():
                raise MakerFailed(f"fatal Kafka error: {error}") from exception
            log.warning(
                "%s: transaction of %s[%d]@%d failed: %s",
                self.name,
                topic,
                partition,
                offset,
                exception,
            )
            self._abort()
            if error is not None and error.code() == KafkaError._TIMED_OUT:
                raise MakerFailed(
                    f"the transaction timed out ({error}): a producer whose coordinator was out of"
                    " reach may never finish another one (librdkafka#5456); the next maker takes"
                    " the order"
                ) from exception
            self._rewind(TopicPartition(topic, partition, offset))
            return Outcome.RETRY
        if isinstance(parsed, Rejection):
            log.warning(
                "%s: dead-lettered %s[%d]@%d: %s",
                self.name,
                topic,
                partition,
                offset,
                parsed.reason,
            )
            return Outcome.DEAD_LETTERED
        log.info(
            "%s: made order %s (%d tabs) in %.2f s",
            self.name,
            parsed.order_id,
            parsed.tabs_count,
            time.monotonic() - started,
        )
        return Outcome.MADE

    def _make_serving_the_group(self, record: Message, order: Order) -> Outcome | None:
        """Make the order's tabs on the pool while this thread keeps polling the group.

        With KIP-848 a member hands partitions over only from poll(). A maker that stopped
        polling for the seconds an order takes would keep every partition it owns: orders there
        wait for it, and a maker that joins meanwhile gets nothing to do. A record such a poll
        returns is put back, so polling serves the group without taking a second order.
        Returns the outcome when a revocation of the order's own partition made `on_revoke`
        finish it already, else None (commit it).
        """
        failure: list[BaseException] = []

        def make() -> None:
            try:
                self.pool.run(order.tabs_count, self._tab_maker(order), self.stopping)
            except BaseException as error:  # handed to this thread below
                failure.append(error)

        worker = threading.Thread(target=make, name=f"order-{order.order_id}")
        current = _InProgress(_next_offset(record), worker, failure)
        self._current = current
        worker.start()
        try:
            while worker.is_alive() and current.settled is None:
                stray = self.consumer.poll(GROUP_POLL_S)
                if stray is not None and stray.error() is None:
                    self._put_back(stray)
                    worker.join(GROUP_POLL_S)  # records keep coming: don't spin on them
        finally:
            worker.join()
            self._current = None
        if current.settled is not None:
            return current.settled
        if failure:
            raise failure[0]
        return None

    def on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Rebalance callback: finish and commit the order before its partition is handed over.

        The commit needs the partition to be ours, and it is until this callback returns.
        """
        current = self._current
        if current is None or not any(
            (p.topic, p.partition) == (current.partition.topic, current.partition.partition)
            for p in partitions
        ):
            return
        current.worker.join()
        self._in_rebalance = True
        try:
            if current.failure:
                raise current.failure[0]
            self._commit(current.partition)
            current.settled = Outcome.MADE
        except Halted:
            self._abort()
            current.settled = Outcome.INTERRUPTED
        except (KafkaException, BufferError) as exception:
            log.warning(
                "%s: commit before handing over the partition failed: %s", self.name, exception
            )
            self._abort()  # the next owner makes the order again
            current.settled = Outcome.RETRY
        finally:
            self._in_rebalance = False

    def leave_group(self) -> None:
        """The watchdog's last words: hand this maker's partitions over now, not at session expiry.

        Not from inside a rebalance callback: the stuck thread is then in the middle of a poll, and
        closing a consumer under a running poll is not safe; the session expiry frees them there.
        """
        if not self._in_rebalance:
            self.consumer.close()

    def _put_back(self, record: Message) -> None:
        """A record polled while busy: rewind so that it is taken after this order.

        Rewinding (not pausing) because a resumed partition is fetched again only up to a
        second later in librdkafka, which would add that second to every queued order.
        """
        topic, partition, offset = _coordinates(record)
        where = TopicPartition(topic, partition, offset)
        self.consumer.seek(where)

    def _tab_maker(self, order: Order) -> Callable[[int, threading.Event], None]:
        def make_tab(index: int, halt: threading.Event) -> None:
            if halt.wait(self.tab_seconds):
                raise Halted
            tab = Tab.made(order, index, made_at_ns=time.time_ns(), maker=self.name)
            # Published the moment it is made; the producer is thread-safe.
            self.producer.produce(
                self.destinations.deliveries_topic, tab.to_bytes(), key=order.order_id
            )

        return make_tab

    def _dead_letter(self, record: Message, rejection: Rejection) -> None:
        topic, partition, offset = _coordinates(record)
        payload, is_base64 = dead_letter_payload(record.value())
        letter = DeadLetter(
            reason=rejection.reason,
            topic=topic,
            partition=partition,
            offset=offset,
            payload=payload,
            payload_base64=is_base64,
            failed_at_ns=time.time_ns(),
            maker=self.name,
        )
        self.producer.produce(self.destinations.dlq_topic, letter.to_bytes(), key=record.key())

    def _commit(self, next_offset: TopicPartition) -> None:
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        group = self.consumer.consumer_group_metadata()
        with self.watchdog.guard("committing the transaction", COMMIT_TIMEOUT_S + WATCHDOG_GRACE_S):
            _retrying(
                lambda: self.producer.send_offsets_to_transaction(
                    [next_offset], group, _remaining(deadline)
                ),
                deadline,
            )
            _retrying(lambda: self.producer.commit_transaction(_remaining(deadline)), deadline)

    def _abort(self) -> None:
        try:
            with self.watchdog.guard(
                "aborting the transaction", ABORT_TIMEOUT_S + WATCHDOG_GRACE_S
            ):
                self.producer.abort_transaction(ABORT_TIMEOUT_S)
        except KafkaException as exception:
            # The broker aborts it after transaction.timeout.ms; this producer is done for.
            raise MakerFailed(f"could not abort the transaction: {exception}") from exception

    def _rewind(self, record: TopicPartition) -> None:
        """Put the consumer back on the record so that the next poll returns it again.

        No poll ran since the record was taken, so (KIP-848) the partition is still ours.
        """
        try:
            self.consumer.seek(record)
        except KafkaException as exception:
            raise MakerFailed(f"could not rewind to the aborted record: {exception}") from exception


def _next_offset(record: Message) -> TopicPartition:
    """The offset after `record`, to commit with it.

    It is what `consumer.position()` holds after polling just this one record, stated explicitly,
    with the record's leader epoch when the broker gave one (the C binding refuses None).
    """
    topic, partition, offset = _coordinates(record)
    epoch = record.leader_epoch()
    if epoch is None:
        return TopicPartition(topic, partition, offset + 1)
    return TopicPartition(topic, partition, offset + 1, leader_epoch=epoch)


def _retrying(call: Callable[[], None], deadline: float) -> None:
    """Repeat a transactional call while librdkafka says a retry may succeed, until `deadline`."""
    while True:
        try:
            call()
            return
        except KafkaException as exception:
            error = _kafka_error(exception)
            retriable = error is not None and error.retriable() and not error.txn_requires_abort()
            if not retriable or time.monotonic() >= deadline:
                raise
            log.info("retrying after a retriable error: %s", error)


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _kafka_error(exception: Exception) -> KafkaError | None:
    error = exception.args[0] if exception.args else None
    return error if isinstance(error, KafkaError) else None


def _coordinates(record: Message) -> tuple[str, int, int]:
    topic, partition, offset = record.topic(), record.partition(), record.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed record always has a topic, partition and offset")
    return topic, partition, offset
