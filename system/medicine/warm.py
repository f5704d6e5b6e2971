"""Whether a maker that has been idle for its timeout is one of the warm floor, and so stays.

KEDA keeps `minReplicaCount` makers at rest by creating a Job whenever fewer run. If those makers
left when idle like the others, KEDA would replace each at its next poll: at rest, a maker start,
a group rebalance and the registration of every partition's producer each idle timeout (measured
on the cluster here: a new maker pod every 10-20 s, with the machine 44 % busy doing nothing), and
an order arriving meanwhile waits for a registration. So a maker that is one of at most
MEDICINE_WARM_FLOOR members of the group stays.

A maker counts the members by what it owns: Kafka's uniform assignor gives each of n members
P // n or P // n + 1 of the topic's P partitions, so a maker owning at least P // floor of them is
one of at most `floor` members, as long as P // floor is above what floor + 1 members get
(ceil(P / (floor + 1))): true for the 40 partitions of tabs.orders and a floor of 2 (20 against
14). While partitions move, a maker may briefly own more than its share; it then stays, and asks
again one idle timeout later.

A warm maker still leaves once it has lived MEDICINE_WARM_LIFETIME_SECONDS, when idle, so that
KEDA replaces it before its Job's activeDeadlineSeconds ends it as failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException

log = logging.getLogger("medpubsub.medicine")

# How long reading the topic's partition count may take; without it, the maker leaves as before.
METADATA_TIMEOUT_S = 5.0


def one_of_the_floor(owned: int, partitions: int, floor: int) -> bool:
    """A member owning `owned` of `partitions` is one of at most `floor` members (docstring)."""
    if floor < 1 or partitions < 1:
        return False
    return owned >= max(1, partitions // floor)


@dataclass
class WarmFloor:
    """The floor a maker belongs to: `floor` makers kept at rest, each for at most `lifetime_s`."""

    floor: int
    lifetime_s: float
    started: float
    _partitions: int = 0

    def keeps(self, consumer: Consumer, topic: str, now: float) -> bool:
        """Whether this idle maker stays: young enough, and one of at most `floor` members."""
        if self.floor < 1 or now - self.started >= self.lifetime_s:
            return False
        partitions = self._partition_count(consumer, topic)
        owned = sum(1 for tp in consumer.assignment() if tp.topic == topic)
        return one_of_the_floor(owned, partitions, self.floor)

    def _partition_count(self, consumer: Consumer, topic: str) -> int:
        if not self._partitions:
            try:
                metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
            except KafkaException as exception:
                log.info(
                    "the partitions of %s are unknown, leaving when idle: %s", topic, exception
                )
                return 0
            found = metadata.topics.get(topic)
            self._partitions = len(found.partitions) if found is not None else 0
        return self._partitions
