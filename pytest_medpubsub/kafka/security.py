"""One Kafka identity per service: SCRAM credentials and least-privilege ACLs.

The same table of grants serves both worlds: the secure embedded broker creates exactly these ACLs,
and the offline manifest rules check that no Strimzi `KafkaUser` asks for more than its service's
grants. What each identity needs, and why:

- patient: Write on the orders topic. An idempotent producer's InitProducerId needs no
  IdempotentWrite on the cluster since Kafka 3.0 (KIP-679): Write on any topic suffices. Describe
  (implied by Write) gives it the topic's metadata.
- medicine: Read on the orders topic and on its group (KIP-848 heartbeats, offset fetch,
  TxnOffsetCommit / AddOffsetsToTxn of `send_offsets_to_transaction`, and the Describe it implies
  for an idle maker's look at the group's members, system/medicine/warm.py); Write on the deliveries
  and dead-letter topics; Write and Describe on its transactional ids, all `medicine-...` (one per
  orders partition, `medicine-<group>-<topic>-<partition>`; the dispatcher's and each dispatched
  order's; system/medicine/producers.py), so by prefix. The dispatcher design runs as this
  identity too (the dispatcher and the makers it starts, which inherit its environment): Read on the
  dispatcher's group, and on the marker groups of the orders, `medicine-order-<order id>`
  (system/medicine/one_order.py), so by prefix.
- keda: KEDA 2.20.2's Kafka scaler (pkg/scalers/kafka_scaler.go, sarama 1.49) asks for topic
  metadata (`ClusterAdmin.DescribeTopics`, `Client.Leader`: Metadata requests, Describe on the
  topic), the group's committed offsets (`ClusterAdmin.ListConsumerGroupOffsets`:
  FindCoordinator and OffsetFetch, Describe on the group and on the topic) and the log-end
  offsets (`Broker.GetAvailableOffsets`: ListOffsets, Describe on the topic). So Describe on the
  orders topic and on the makers' group, nothing else. The harness's own lag reader and group
  view (`OffsetReader`, `group_assignment`, the chaos `kill_makers` probe) read exactly that, so
  they use this identity too: the local scaler sees what KEDA would see.
- observer: Read on the three topics (it reads them from the start, read_committed) and on the
  groups whose names start with its client-id prefix (librdkafka looks up a coordinator for the
  `group.id` a reader is given, even without joining).
- admin: the harness (topics, warm-up, ACLs); the only super user among the client identities.

No grant names a `*` resource or the `All` operation.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from medpubsub.medicine.producers import TRANSACTIONAL_PREFIX
from medpubsub.settings import ConfigError, KafkaSettings

SECURITY_PROTOCOL = "SASL_PLAINTEXT"
SASL_MECHANISM = "SCRAM-SHA-512"
SERVICE_IDENTITIES = ("patient", "medicine", "keda", "observer")
ADMIN = "admin"
IDENTITIES = (*SERVICE_IDENTITIES, ADMIN)
# Every transactional id of a maker starts with this (system/medicine/producers.py).
MAKER_TRANSACTIONAL_PREFIX = TRANSACTIONAL_PREFIX
# The consumer group that marks a dispatched order made (system/medicine/one_order.py).
MARKER_GROUP_PREFIX = "medicine-order-"
# The observer's consumers are `medpubsub-observer-<hex>` with group `<client id>-reader`.
OBSERVER_GROUP_PREFIX = "medpubsub-observer-"

ResourceKind = Literal["topic", "group", "transactionalId"]
Pattern = Literal["literal", "prefix"]


@dataclass(frozen=True)
class Grant:
    """Operations allowed on one resource (Strimzi's KafkaUser ACL rule, in its own words)."""

    resource: ResourceKind
    name: str
    operations: tuple[str, ...]
    pattern: Pattern = "literal"


def grants(
    orders: str = "tabs.orders",
    deliveries: str = "tabs.deliveries",
    dlq: str = "tabs.dlq",
    group: str = "medicine",
    dispatcher_group: str = "dispatcher",
) -> dict[str, tuple[Grant, ...]]:
    """What each service identity may do (see the module docstring for why)."""
    return {
        "patient": (Grant("topic", orders, ("Write", "Describe")),),
        "medicine": (
            Grant("topic", orders, ("Read", "Describe")),
            Grant("group", group, ("Read",)),
            Grant("topic", deliveries, ("Write", "Describe")),
            Grant("topic", dlq, ("Write", "Describe")),
            Grant("transactionalId", MAKER_TRANSACTIONAL_PREFIX, ("Write", "Describe"), "prefix"),
            Grant("group", dispatcher_group, ("Read",)),
            Grant("group", MARKER_GROUP_PREFIX, ("Read",), "prefix"),
        ),
        "keda": (
            Grant("topic", orders, ("Describe",)),
            Grant("group", group, ("Describe",)),
        ),
        "observer": (
            Grant("topic", orders, ("Read", "Describe")),
            Grant("topic", deliveries, ("Read", "Describe")),
            Grant("topic", dlq, ("Read", "Describe")),
            Grant("group", OBSERVER_GROUP_PREFIX, ("Read",), "prefix"),
        ),
    }


def system_grants(kafka: KafkaSettings, group: str = "medicine") -> dict[str, tuple[Grant, ...]]:
    return grants(kafka.orders_topic, kafka.deliveries_topic, kafka.dlq_topic, group)


_RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}


def acl_bindings(username: str, identity_grants: tuple[Grant, ...]) -> Iterator[AclBinding]:
    """The broker ACLs of one user: one allow binding per operation of each grant."""
    for grant in identity_grants:
        for operation in grant.operations:
            yield AclBinding(
                _RESOURCE_TYPES[grant.resource],
                grant.name,
                _PATTERNS[grant.pattern],
                f"User:{username}",
                "*",
                AclOperation[operation.upper()],
                AclPermissionType.ALLOW,
            )


@dataclass(frozen=True)
class Credentials:
    """The username and password of every identity; written as the `credentials=PATH` file."""

    users: Mapping[str, tuple[str, str]]
    security_protocol: str = SECURITY_PROTOCOL
    sasl_mechanism: str = SASL_MECHANISM

    @classmethod
    def generate(cls) -> Credentials:
        """Random passwords (256 bits each), usernames as the identities are named."""
        return cls({identity: (identity, secrets.token_urlsafe(32)) for identity in IDENTITIES})

    def username(self, identity: str) -> str:
        return self._user(identity)[0]

    def settings(self, kafka: KafkaSettings, identity: str) -> KafkaSettings:
        """`kafka` (bootstrap, topics) as `identity` connects."""
        username, password = self._user(identity)
        return kafka.model_copy(
            update={
                "kafka_security_protocol": self.security_protocol,
                "kafka_sasl_mechanism": self.sasl_mechanism,
                "kafka_sasl_username": username,
                "kafka_sasl_password": password,
            }
        )

    def environment(self, identity: str) -> dict[str, str]:
        """The MEDPUBSUB_KAFKA_* variables (docs/design.md §2.2) a service process reads."""
        username, password = self._user(identity)
        return {
            "MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "MEDPUBSUB_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "MEDPUBSUB_KAFKA_SASL_USERNAME": username,
            "MEDPUBSUB_KAFKA_SASL_PASSWORD": password,
        }

    def write(self, path: Path) -> Path:
        """Write the file with mode 0600 from its creation on (the passwords never sit readable)."""
        document = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            **{
                identity: {"username": username, "password": password}
                for identity, (username, password) in self.users.items()
            },
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(document, indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Credentials:
        """Read a credentials file, or raise `ConfigError` with one sentence."""
        try:
            document = json.loads(path.read_text())
            users = {
                identity: (str(document[identity]["username"]), str(document[identity]["password"]))
                for identity in IDENTITIES
                if identity in document
            }
            return cls(users, str(document["security_protocol"]), str(document["sasl_mechanism"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the Kafka credentials file {path}: {error}") from None

    def _user(self, identity: str) -> tuple[str, str]:
        try:
            return self.users[identity]
        except KeyError:
            raise ConfigError(f"the credentials have no {identity!r} identity") from None


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only, created so (not chmod-ed afterwards)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def as_identity(
    kafka: KafkaSettings, credentials: Credentials | None, identity: str
) -> KafkaSettings:
    """`kafka` as `identity` when the broker is secured, else unchanged."""
    return kafka if credentials is None else credentials.settings(kafka, identity)
