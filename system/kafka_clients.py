"""librdkafka settings for every client of the system, in one place.

Latency matters more than batching here (an order is a handful of bytes once a second), so
producers do not linger and consumers do not wait long for a fetch to fill.
"""

from __future__ import annotations

from typing import Any

from medpubsub.settings import KafkaSettings

ClientConfig = dict[str, Any]


def common_config(kafka: KafkaSettings, client_id: str) -> ClientConfig:
    config: ClientConfig = {
        "bootstrap.servers": kafka.kafka_bootstrap,
        "client.id": client_id,
        "security.protocol": kafka.kafka_security_protocol.lower(),
        # Keep reconnect attempts frequent so a restarted broker is found again within a second.
        "reconnect.backoff.max.ms": 1000,
    }
    if kafka.kafka_sasl_mechanism:
        config["sasl.mechanism"] = kafka.kafka_sasl_mechanism
        config["sasl.username"] = kafka.kafka_sasl_username
        config["sasl.password"] = kafka.kafka_sasl_password
    if kafka.kafka_ssl_cafile:
        config["ssl.ca.location"] = kafka.kafka_ssl_cafile
    return config


def producer_config(
    kafka: KafkaSettings,
    client_id: str,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 10_000,
) -> ClientConfig:
    config = common_config(kafka, client_id)
    # Room for a dead letter of the largest order (see tabs.dlq's max.message.bytes).
    config.update(
        {"acks": "all", "enable.idempotence": True, "linger.ms": 0, "message.max.bytes": 2_200_000}
    )
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
        # A transaction left open by a killed process blocks read_committed readers of the
        # partitions it wrote to until the broker aborts it after this timeout, unless the next
        # holder of the same transactional id registers first (system/medicine/producers.py).
        config["transaction.timeout.ms"] = transaction_timeout_ms
    return config


def order_producer_config(kafka: KafkaSettings, client_id: str) -> ClientConfig:
    """A patient's producer: orders keyed by patient id, but spread over every partition.

    Hashing the key would put all of a patient's orders on one partition, and a partition is made
    one order at a time (its offsets are committed in order): at 2 s an order that is at most half
    an order a second, while a patient orders once a second. Orders of one patient are
    independent, so nothing needs their order kept; the key stays for tracing.
    """
    return producer_config(kafka, client_id) | {"partitioner": "random"}


def consumer_config(kafka: KafkaSettings, client_id: str, group_id: str) -> ClientConfig:
    config = common_config(kafka, client_id)
    config.update(
        {
            "group.id": group_id,
            # KIP-848: a maker joining or leaving does not stop the others (no eager rebalance).
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 50,
        }
    )
    return config


def reader_config(kafka: KafkaSettings, client_id: str) -> ClientConfig:
    """A group-less reader (observer, tests): sees only committed transactions, from the start."""
    config = common_config(kafka, client_id)
    config.update(
        {
            "group.id": f"{client_id}-reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 50,
        }
    )
    return config
