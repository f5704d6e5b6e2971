"""Where a maker's partitions start: their committed offsets, read until stable.

An offset is unstable while the transaction that commits it is open (the previous owner's last
order, or a killed maker's until the partition is registered again or the transaction times
out); the broker then answers UNSTABLE_OFFSET_COMMIT for that partition. One whose transaction
lost its markers stays unstable until the partition's new producer has swept (sweep.py), which
its registration, started before this read, does. A maker never starts a partition on a guess:
it waits for the stable offset, or leaves the partition (maker.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from medpubsub.medicine.lines import PartitionKey

# One look-up of the committed offsets of some partitions.
COMMITTED_TIMEOUT_S = 5.0
# How long an assigned partition may wait for its committed offset to become stable: the
# transaction committing it ends within the makers' transaction timeout (10 s or more), or the
# broker aborts it then.
STABLE_OFFSET_TIMEOUT_S = 60.0
# A wait for stable offsets this long is logged: every order of the maker waits meanwhile (this
# runs in a rebalance callback). Seen before the sweep: 60 s and more, for partitions whose last
# transaction had lost its markers.
SLOW_START_S = 1.0

log = logging.getLogger("medpubsub.medicine")


def start_of(committed: TopicPartition) -> int:
    """Where a partition starts from its committed offset: there, or its beginning if none."""
    return committed.offset if committed.offset >= 0 else OFFSET_BEGINNING


def committed_starts(consumer: Consumer, keys: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
    """Where each of `keys` starts now; one whose offset is still being committed is left out.

    Raises KafkaException when the group coordinator does not answer in time.
    """
    asked = [TopicPartition(topic, partition) for topic, partition in keys]
    found = consumer.committed(asked, timeout=COMMITTED_TIMEOUT_S)
    return {(tp.topic, tp.partition): start_of(tp) for tp in found if tp.error is None}


def stable_starts(
    consumer: Consumer, partitions: Sequence[TopicPartition]
) -> tuple[list[TopicPartition], str | None]:
    """Each partition at its stable committed offset (or its beginning if none), and why the
    ones left out are (their commit stayed unreadable past STABLE_OFFSET_TIMEOUT_S, or the
    consumer failed for good); None when none is."""
    started = time.monotonic()
    deadline = started + STABLE_OFFSET_TIMEOUT_S
    wanted = {(p.topic, p.partition) for p in partitions}
    starts: dict[PartitionKey, int] = {}
    last = "nothing yet"
    while wanted - set(starts) and time.monotonic() < deadline:
        asked = [TopicPartition(t, p) for t, p in sorted(wanted - set(starts))]
        try:
            found = consumer.committed(asked, timeout=COMMITTED_TIMEOUT_S)
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
    waited_s = time.monotonic() - started
    if waited_s >= SLOW_START_S:
        log.info("the committed offsets took %.1f s to read as stable (%s)", waited_s, last)
    missing = wanted - set(starts)
    unreadable = (
        f"the committed offsets of {sorted(missing)} stayed unreadable for"
        f" {STABLE_OFFSET_TIMEOUT_S:.0f} s ({last})"
        if missing
        else None
    )
    return [TopicPartition(t, p, offset) for (t, p), offset in sorted(starts.items())], unreadable
