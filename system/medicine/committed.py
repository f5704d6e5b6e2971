"""Where a maker's partitions start: their committed offsets, read until stable.

An offset is unstable while the transaction that commits it is open (the previous owner's last
order, or a killed maker's until the partition is registered again or the transaction times
out); the broker then answers UNSTABLE_OFFSET_COMMIT for that partition. One whose transaction
lost its markers stays unstable until the partition's new producer has swept (sweep.py), which
its registration, started before this read, does. A maker never starts a partition on a guess:
it waits for the stable offset, or leaves the partition (maker.py).

The offsets are read with the maker's admin client (`GroupOffsets`), not with its consumer:
- librdkafka's `Consumer.committed()` retries an UNSTABLE_OFFSET_COMMIT answer itself until the
  call's timeout, so an unstable partition looked like a coordinator that did not answer
  ("Local: Timed out"), and which partition waited was never said. The admin client returns the
  broker's answer per partition at once (`tests/services/test_committed_offsets.py`).
- On the kubeadm cluster (2026-12-07, a step ramp's scale-in) one maker's reads in `on_assign`
  timed out twelve times in a row, for 60 s (librdkafka's `socket.timeout.ms`; the next read
  answered at once), while the maker that had taken the same partitions 1 s later read them at
  once: what stalled was that consumer's requests, not the offsets. Its Job outlived the scale-in
  bound. Read by a client of their own, the offsets do not wait on the consumer's requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import (
    OFFSET_BEGINNING,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from medpubsub.medicine.lines import PartitionKey

# One look-up of the committed offsets of some partitions.
COMMITTED_TIMEOUT_S = 5.0
# How long an assigned partition may wait for its committed offset to become stable: the
# transaction committing it ends within the makers' transaction timeout (10 s or more), or the
# broker aborts it then.
STABLE_OFFSET_TIMEOUT_S = 60.0
# Between two reads that found a partition unstable: the broker answers at once, and an open
# transaction ends in milliseconds (a commit) or at a registration or timeout (seconds).
UNSTABLE_RETRY_S = 0.1
# A wait for stable offsets this long is logged: every order of the maker waits meanwhile (this
# runs in a rebalance callback). Seen before the sweep: 60 s and more, for partitions whose last
# transaction had lost its markers.
SLOW_START_S = 1.0

log = logging.getLogger("medpubsub.medicine")


def start_of(committed: TopicPartition) -> int:
    """Where a partition starts from its committed offset: there, or its beginning if none."""
    return committed.offset if committed.offset >= 0 else OFFSET_BEGINNING


class GroupOffsets:
    """The committed offsets of one consumer group, read stable (`require_stable`) with an admin
    client apart from the consumer. `admin` is asked for it at each read: the caller makes it
    and keeps it (service.py shares one, made at its first use)."""

    def __init__(self, group_id: str, admin: Callable[[], AdminClient]) -> None:
        self._group_id = group_id
        self._admin = admin

    def read(self, partitions: Sequence[TopicPartition], timeout_s: float) -> list[TopicPartition]:
        """Each partition's committed offset, or its error (UNSTABLE_OFFSET_COMMIT while a
        transaction commits it). Raises KafkaException when the coordinator does not answer in
        `timeout_s`."""
        asked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        request = ConsumerGroupTopicPartitions(self._group_id, asked)
        future = self._admin().list_consumer_group_offsets(
            [request], require_stable=True, request_timeout=timeout_s
        )[self._group_id]
        try:
            answer = future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "the group coordinator did not answer")
            ) from None
        found: list[TopicPartition] = answer.topic_partitions or []
        return found


def committed_starts(
    offsets: GroupOffsets, keys: Sequence[PartitionKey]
) -> dict[PartitionKey, int]:
    """Where each of `keys` starts now; one whose offset is still being committed is left out.

    Raises KafkaException when the group coordinator does not answer in time.
    """
    asked = [TopicPartition(topic, partition) for topic, partition in keys]
    found = offsets.read(asked, COMMITTED_TIMEOUT_S)
    return {(tp.topic, tp.partition): start_of(tp) for tp in found if tp.error is None}


def stable_starts(
    offsets: GroupOffsets,
    partitions: Sequence[TopicPartition],
    timeout_s: float = STABLE_OFFSET_TIMEOUT_S,
) -> tuple[list[TopicPartition], str | None]:
    """Each partition at its stable committed offset (or its beginning if none), and why the
    ones left out are (their commit stayed unreadable past `timeout_s`, or the admin client
    failed for good); None when none is."""
    started = time.monotonic()
    deadline = started + timeout_s
    wanted = {(p.topic, p.partition) for p in partitions}
    starts: dict[PartitionKey, int] = {}
    last = "nothing yet"
    while wanted - set(starts) and time.monotonic() < deadline:
        asked = [TopicPartition(t, p) for t, p in sorted(wanted - set(starts))]
        try:
            remaining_s = max(UNSTABLE_RETRY_S, deadline - time.monotonic())
            found = offsets.read(asked, min(COMMITTED_TIMEOUT_S, remaining_s))
        except KafkaException as exception:
            error = exception.args[0] if exception.args else None
            if isinstance(error, KafkaError) and error.fatal():
                break
            last = str(exception)
            continue
        for committed in found:
            if committed.error is not None:  # UNSTABLE_OFFSET_COMMIT: still being committed
                last = f"{committed.topic}[{committed.partition}]: {committed.error}"
                continue
            starts[(committed.topic, committed.partition)] = start_of(committed)
        if wanted - set(starts):
            time.sleep(UNSTABLE_RETRY_S)
    waited_s = time.monotonic() - started
    if waited_s >= SLOW_START_S:
        log.info("the committed offsets took %.1f s to read as stable (%s)", waited_s, last)
    missing = wanted - set(starts)
    unreadable = (
        f"the committed offsets of {sorted(missing)} stayed unreadable for"
        f" {timeout_s:.0f} s ({last})"
        if missing
        else None
    )
    return [TopicPartition(t, p, offset) for (t, p), offset in sorted(starts.items())], unreadable
