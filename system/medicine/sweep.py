"""What a newly registered producer does first: end, as aborted, what lost markers left open.

Measured here (Kafka 4.3.1, one broker in KRaft combined mode): a broker restarted after a
SIGKILL loads its transactions at once and aborts those that timed out while it was down, but it
opens its own listener only once it has registered again, and its controller lets it register
only after the previous incarnation's session has expired (9 s). The abort markers wait for that
listener. When the session expires, the controller fences the broker, every partition is left
without a leader, and the coordinator drops the markers it still holds, taking the partitions
for deleted ones. The transaction is over for the coordinator and still open on every partition
it wrote:
- on a deliveries partition, its tabs hold back read_committed readers, and the next transaction
  of the same producer id that writes there commits them together with its own: the order's
  tabs twice;
- on the group's offsets partition, the offset it committed stays pending for good, and every
  read of stable committed offsets times out (seen: makers leaving one after another for
  10 minutes after a broker restart).
Both are reproduced on purpose in tests/services/test_lost_markers.py.

`init_transactions` does not end such a transaction: for the coordinator nothing is open. A
marker of the same producer id does. So every producer of the system (each with an id bound to
what it owns: a partition, an order, the dispatcher's group), once registered, opens one
transaction that writes where its id may have written before: an empty record to each partition
of the destination topics, and a transactional offset commit to its group. Then it aborts it.
The abort marker ends whatever was left open there, as aborted: nothing of it becomes visible,
its offset stays uncommitted, and its order is made again, once. Read_committed readers never
see the empty records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

log = logging.getLogger("medpubsub.medicine")

# How long one sweep keeps trying (the coordinator may still be loading after a restart).
SWEEP_TIMEOUT_S = 30.0
# One metadata look-up, or one transactional call, of a sweep.
SWEEP_CALL_S = 5.0
# A pause between attempts, so that a failing coordinator is not asked in a tight loop.
RETRY_PAUSE_S = 0.2


class SweepFailed(Exception):
    """The producer could not end what may be left open (fenced, or the broker out of reach)."""


@dataclass(frozen=True)
class Sweep:
    """Where a producer of this system may have written: whole topics, or one key's partitions.

    Call it with a registered producer and, when it commits a group's offsets in its
    transactions, a partition of that group and the group's metadata (a callable: the group's
    member epoch may move while a sweep retries). Returns when done or when `stopping()`.
    """

    # Every partition of these: a maker's partition producer may have written tabs or a dead
    # letter anywhere (which order it was making is not known).
    topics: Sequence[str] = ()
    # The partition of each (topic, key): where a producer that knows its key wrote (a one-order
    # maker's tabs are keyed by its order id). One record each instead of a whole topic's.
    keyed: Sequence[tuple[str, str]] = ()

    def __call__(
        self,
        producer: Producer,
        offsets_of: TopicPartition | None = None,
        group_metadata: Callable[[], Any] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        deadline = time.monotonic() + SWEEP_TIMEOUT_S
        last = "nothing tried yet"
        while not stopping():
            try:
                group = (
                    (offsets_of, group_metadata())
                    if offsets_of is not None and group_metadata is not None
                    else None
                )
                self._abort_everywhere(producer, group)
                return
            except KafkaException as exception:
                error = exception.args[0] if exception.args else None
                if isinstance(error, KafkaError) and error.fatal():
                    raise SweepFailed(f"cannot end what was left open: {error}") from exception
                last = str(exception)
                _abort_quietly(producer)
            if time.monotonic() >= deadline:
                raise SweepFailed(
                    f"could not end what was left open within {SWEEP_TIMEOUT_S:.0f} s: {last}"
                )
            log.info("retrying the sweep after: %s", last)
            time.sleep(RETRY_PAUSE_S)

    def _abort_everywhere(
        self, producer: Producer, group: tuple[TopicPartition, Any] | None
    ) -> None:
        partitions = _partitions(producer, self.topics)
        producer.begin_transaction()
        for topic, partition in partitions:
            producer.produce(topic, b"", partition=partition)
        for topic, key in self.keyed:  # the partitioner puts it where that key's records went
            producer.produce(topic, b"", key=key)
        # Delivered before the abort: an abort purges records not sent yet, and the sequence
        # numbers they took leave a gap that fails the producer's next transaction
        # (OUT_OF_ORDER_SEQUENCE_NUMBER, measured at 60 patients).
        unsent = producer.flush(SWEEP_CALL_S)
        if unsent:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, f"{unsent} sweep record(s) not delivered yet")
            )
        if group is not None:
            # An offset of 0, never committed: it only puts the group's offsets partition in the
            # transaction, so that the abort marker reaches it.
            offsets_of, metadata = group
            where = TopicPartition(offsets_of.topic, offsets_of.partition, 0)
            producer.send_offsets_to_transaction([where], metadata, SWEEP_CALL_S)
        producer.abort_transaction(SWEEP_CALL_S)


def _partitions(producer: Producer, topics: Sequence[str]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for topic in topics:
        metadata = producer.list_topics(topic, timeout=SWEEP_CALL_S).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            detail = metadata.error if metadata is not None else "unknown"
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"{topic}: {detail}"))
        found.extend((topic, partition) for partition in sorted(metadata.partitions))
    return found


def _abort_quietly(producer: Producer) -> None:
    """End a sweep that failed half-way, if it got as far as opening its transaction."""
    try:
        producer.abort_transaction(SWEEP_CALL_S)
    except KafkaException as exception:
        log.info("the failed sweep's transaction could not be aborted (yet): %s", exception)
