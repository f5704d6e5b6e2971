"""One record made into tabs (or a dead letter), then committed in one short Kafka transaction.

The tabs are made first, outside any transaction (each takes the making time); the transaction
then holds everything the record leads to — every tab, or the dead letter — and the consumer
group's offset past the record (`send_offsets_to_transaction`). Either all of it becomes visible
to read_committed readers or none of it: a maker killed mid-order leaves nothing behind and the
record is still uncommitted, so the next maker makes the whole order again, once. The offset is
committed only after the previous order of the same partition committed (lines.py), so a
partition's transactions take turns on its producer (producers.py).

Why the transaction is opened only to commit: an open transaction holds back every read_committed
reader of the partitions it wrote to. Opened for the making time, a killed maker's transaction
held the deliveries of every other maker on those partitions for `transaction.timeout.ms`; opened
for milliseconds, it almost never outlives its maker, and the next owner's registration aborts it
if it does.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from medpubsub.medicine.lines import InFlight
from medpubsub.medicine.pool import Halted, ThreadPoolController
from medpubsub.medicine.producers import ProducerUnavailable
from medpubsub.medicine.watchdog import Watchdog
from medpubsub.messages import DeadLetter, Order, Rejection, Tab

log = logging.getLogger("medpubsub.medicine")

# librdkafka retries most transactional requests itself; these bound how long we keep asking. A
# commit takes milliseconds: one still going after seconds means the coordinator is out of reach,
# and the broker aborts the transaction soon anyway (transaction.timeout.ms, 10 s).
COMMIT_TIMEOUT_S = 5.0
ABORT_TIMEOUT_S = 5.0
# How long past those bounds the watchdog lets a call block before it ends the process (#5456).
WATCHDOG_GRACE_S = 2.0
# How long an order waits for the previous order of its partition to settle before it gives up
# (that one is bounded by its own making time and commit bound; this only catches a stuck one).
EARLIER_ORDER_TIMEOUT_S = 90.0


class Outcome(enum.Enum):
    """What became of a record."""

    MADE = "made"  # the order's tabs and offset are committed
    DEAD_LETTERED = "dead-lettered"  # the dead letter and offset are committed
    RETRY = "retry"  # aborted after a recoverable error; the partition is read again from it
    BEHIND = "behind"  # not committed because an earlier order of its partition was not
    INTERRUPTED = "interrupted"  # a stop request came while the tabs were being made
    # its partition was revoked before its commit began, or its next owner fenced the commit
    HANDED_OVER = "handed over"


class MakerFailed(Exception):
    """The maker cannot go on (fenced, fatal client error, a failed abort): exit non-zero.

    Nothing is lost: the record's offset is not committed, so the next maker takes it again.
    """


@dataclass(frozen=True)
class Destinations:
    deliveries_topic: str
    dlq_topic: str


GroupMetadata = Callable[[], Any]


@dataclass(frozen=True)
class Workshop:
    """What every order's transaction needs from its maker."""

    name: str
    destinations: Destinations
    tab_seconds: float
    group_metadata: GroupMetadata
    stopping: Callable[[], bool]
    watchdog: Watchdog


def make_in_transaction(
    workshop: Workshop,
    ready_producer: Callable[[], Producer],
    record: Message,
    parsed: Order | Rejection,
    line: InFlight,
) -> Outcome:
    """Make `record` into tabs or a dead letter, and commit it behind its line on the producer
    `ready_producer()` gives once the tabs are made (it may wait for the partition's registration).

    Raises `MakerFailed` when there is no producer to commit on, or it cannot be used any more
    (fenced: another maker owns the partition now).
    """
    topic, partition, offset = coordinates(record)
    started = time.monotonic()
    if isinstance(parsed, Rejection):
        messages = [_dead_letter(workshop, record, parsed)]
    else:
        log.info(
            "%s: making order %s (%d tabs) from %s[%d]@%d",
            workshop.name,
            parsed.order_id,
            parsed.tabs_count,
            topic,
            partition,
            offset,
        )
        try:
            messages = _made_tabs(workshop, parsed, line)
        except Halted:
            if line.handed_over:
                return Outcome.HANDED_OVER
            log.info("%s: stopping mid-order at %s[%d]@%d", workshop.name, topic, partition, offset)
            return Outcome.INTERRUPTED
    if not line.earlier_committed(EARLIER_ORDER_TIMEOUT_S):
        if line.handed_over or line.departing:
            return Outcome.HANDED_OVER
        log.info(
            "%s: %s[%d]@%d waits behind an order that was not committed; leaving it",
            workshop.name,
            topic,
            partition,
            offset,
        )
        return Outcome.BEHIND
    try:
        producer = ready_producer()
    except ProducerUnavailable as unavailable:
        # The revocation dropped the partition's producer before it was ready.
        if line.handed_over or line.departing:
            return Outcome.HANDED_OVER
        raise MakerFailed(f"cannot commit {topic}[{partition}]@{offset}: {unavailable}") from None
    if not line.claim_commit():
        return Outcome.HANDED_OVER
    try:
        producer.begin_transaction()
        for message in messages:
            producer.produce(message.topic, message.value, key=message.key)
        _commit(workshop, producer, next_offset(record))
    except (KafkaException, BufferError) as exception:
        error = kafka_error(exception)
        if line.departing:
            return _departed(workshop, producer, line, error or exception)
        if error is not None and error.fatal():
            raise MakerFailed(_fatal(error, topic, partition)) from exception
        log.warning(
            "%s: transaction of %s[%d]@%d failed: %s",
            workshop.name,
            topic,
            partition,
            offset,
            exception,
        )
        _abort(workshop, producer)
        if error is not None and error.code() == KafkaError._TIMED_OUT:
            raise MakerFailed(
                f"the transaction timed out ({error}): a producer whose coordinator was out of"
                " reach may never finish another one (librdkafka#5456); the next maker takes"
                " the order"
            ) from exception
        return Outcome.RETRY
    if isinstance(parsed, Rejection):
        log.warning(
            "%s: dead-lettered %s[%d]@%d: %s",
            workshop.name,
            topic,
            partition,
            offset,
            parsed.reason,
        )
        return Outcome.DEAD_LETTERED
    log.info(
        "%s: made order %s (%d tabs) in %.2f s",
        workshop.name,
        parsed.order_id,
        parsed.tabs_count,
        time.monotonic() - started,
    )
    return Outcome.MADE


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    value: bytes
    key: bytes | str | None


def _made_tabs(workshop: Workshop, order: Order, line: InFlight) -> list[_Outgoing]:
    """Every tab of `order`, made at once on the order's workers (raises `Halted` when stopped,
    or when the order is handed over)."""
    made: dict[int, Tab] = {}

    def make_tab(index: int, halt: threading.Event) -> None:
        if halt.wait(workshop.tab_seconds):
            raise Halted
        made[index] = Tab.made(order, index, made_at_ns=time.time_ns(), maker=workshop.name)

    ThreadPoolController(max(1, line.workers)).run(
        order.tabs_count, make_tab, lambda: workshop.stopping() or line.handed_over
    )
    return [
        _Outgoing(workshop.destinations.deliveries_topic, made[index].to_bytes(), order.order_id)
        for index in range(order.tabs_count)
    ]


def _departed(
    workshop: Workshop, producer: Producer, line: InFlight, error: KafkaError | Exception
) -> Outcome:
    """A revoked partition's order whose commit failed: its next owner makes it.

    Expected, not a fault: the next owner's registration fenced this producer (or the group
    moved this maker to a new member epoch) before the order was made. Nothing of it is
    visible, and the partition is no longer this maker's to read again.
    """
    topic, partition = line.key
    log.info(
        "%s: %s[%d]@%d was revoked and its next owner came first (%s); it makes the order",
        workshop.name,
        topic,
        partition,
        line.offset,
        error,
    )
    fatal = isinstance(error, KafkaError) and error.fatal()
    if not fatal:  # a fenced producer refuses every call, and its transaction is aborted anyway
        try:
            _abort(workshop, producer)
        except MakerFailed as failed:
            log.info("%s: %s (the producer is dropped with the partition)", workshop.name, failed)
    return Outcome.HANDED_OVER


def _fatal(error: KafkaError, topic: str, partition: int) -> str:
    if error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        return (
            f"fenced on {topic}[{partition}]: another maker has taken the partition (this maker"
            f" lost its place in the group, e.g. starved past its session): {error}"
        )
    return f"fatal Kafka error: {error}"


def _dead_letter(workshop: Workshop, record: Message, rejection: Rejection) -> _Outgoing:
    letter = DeadLetter.of_record(
        record.value(), *coordinates(record), reason=rejection.reason, maker=workshop.name
    )
    return _Outgoing(workshop.destinations.dlq_topic, letter.to_bytes(), record.key())


def _commit(workshop: Workshop, producer: Producer, offset: TopicPartition) -> None:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    with workshop.watchdog.guard("committing the transaction", COMMIT_TIMEOUT_S + WATCHDOG_GRACE_S):
        group = workshop.group_metadata()
        retrying(
            lambda: producer.send_offsets_to_transaction([offset], group, remaining(deadline)),
            deadline,
        )
        retrying(lambda: producer.commit_transaction(remaining(deadline)), deadline)


def _abort(workshop: Workshop, producer: Producer) -> None:
    try:
        with workshop.watchdog.guard(
            "aborting the transaction", ABORT_TIMEOUT_S + WATCHDOG_GRACE_S
        ):
            producer.abort_transaction(ABORT_TIMEOUT_S)
    except KafkaException as exception:
        # The broker aborts it after transaction.timeout.ms; this producer is done for.
        raise MakerFailed(f"could not abort the transaction: {exception}") from exception


def next_offset(record: Message) -> TopicPartition:
    """The offset after `record`, to commit with it.

    It is what `consumer.position()` holds after polling just this one record, stated explicitly,
    with the record's leader epoch when the broker gave one (the C binding refuses None).
    """
    topic, partition, offset = coordinates(record)
    epoch = record.leader_epoch()
    if epoch is None:
        return TopicPartition(topic, partition, offset + 1)
    return TopicPartition(topic, partition, offset + 1, leader_epoch=epoch)


def retrying(call: Callable[[], None], deadline: float) -> None:
    """Repeat a transactional call while librdkafka says a retry may succeed, until `deadline`."""
    while True:
        try:
            call()
            return
        except KafkaException as exception:
            error = kafka_error(exception)
            retriable = error is not None and error.retriable() and not error.txn_requires_abort()
            if not retriable or time.monotonic() >= deadline:
                raise
            log.info("retrying after a retriable error: %s", error)


def remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def kafka_error(exception: Exception) -> KafkaError | None:
    error = exception.args[0] if exception.args else None
    return error if isinstance(error, KafkaError) else None


def coordinates(record: Message) -> tuple[str, int, int]:
    topic, partition, offset = record.topic(), record.partition(), record.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed record always has a topic, partition and offset")
    return topic, partition, offset
