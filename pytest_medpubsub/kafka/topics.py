"""The system's topics: read from the Strimzi KafkaTopic manifests, created on any broker.

Locally the same partition counts and configs apply as on the cluster, so the KEDA partition cap
and the observer see the same topology in both worlds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.client_log import quiet


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


# Used only when the manifests cannot be found (a wheel installed outside a checkout).
DEFAULT_TOPICS = (
    TopicSpec("tabs.orders", 12),
    TopicSpec("tabs.deliveries", 12),
    TopicSpec("tabs.dlq", 3),
)


def read_topic_specs(manifest: Path) -> list[TopicSpec]:
    """Every `KafkaTopic` in `manifest`: spec.topicName (else metadata.name), partitions, config."""
    specs = []
    for document in yaml.safe_load_all(manifest.read_text()):
        if not isinstance(document, dict) or document.get("kind") != "KafkaTopic":
            continue
        spec: dict[str, Any] = document.get("spec") or {}
        name = spec.get("topicName") or document["metadata"]["name"]
        config = {key: str(value) for key, value in (spec.get("config") or {}).items()}
        specs.append(TopicSpec(str(name), int(spec.get("partitions", 1)), config))
    if not specs:
        raise ValueError(f"{manifest} has no KafkaTopic")
    return specs


def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec], timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet (replication factor 1: a single broker)."""
    admin = AdminClient(quiet(common_config(kafka, "medpubsub-topics")))
    new_topics = [
        NewTopic(
            spec.name, num_partitions=spec.partitions, replication_factor=1, config=spec.config
        )
        for spec in specs
    ]
    for name, future in admin.create_topics(new_topics, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(
                    f"could not create topic {name}: {error.args[0].str()}"
                ) from None
