"""Who is in the makers' consumer group and which partitions each owns (KIP-848 describe).

The harness waits on it for warm makers: a maker counts as ready once the group has assigned it
partitions, not when its process started, because an order waits for the member that owns its
partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.client_log import quiet


@dataclass(frozen=True)
class GroupAssignment:
    """The members of a group that own partitions of `topic`, and how many they own together."""

    members_with_partitions: int
    assigned_partitions: int
    partitions: int

    @property
    def fully_assigned(self) -> bool:
        return self.partitions > 0 and self.assigned_partitions == self.partitions

    def __str__(self) -> str:
        return (
            f"{self.members_with_partitions} member(s) owning "
            f"{self.assigned_partitions}/{self.partitions} partitions"
        )


def group_assignment(
    kafka: KafkaSettings, group: str, topic: str, timeout_s: float = 10.0
) -> GroupAssignment:
    """Describe `group` and count its members' partitions of `topic`."""
    admin = AdminClient(quiet(common_config(kafka, f"medpubsub-group-{group}")))
    metadata = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
    partitions = 0 if metadata is None or metadata.error else len(metadata.partitions)
    description = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group].result(
        timeout=timeout_s
    )
    owned: set[int] = set()
    members = 0
    for member in description.members:
        mine = {
            tp.partition
            for tp in (member.assignment.topic_partitions if member.assignment else [])
            if tp.topic == topic
        }
        members += bool(mine)
        owned |= mine
    return GroupAssignment(members, len(owned), partitions)
