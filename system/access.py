"""A service's first contact with a secured Kafka: is its login accepted, may it see its topic?

librdkafka treats a refused login like a broker away for a while: it logs, retries and never
fails a call for it, so a maker with a wrong password would sit in its group-join loop until
its idle timeout, and a patient would queue orders that never leave. Both are configuration
errors, so each service asks once at start, bounded in time, and stops with one sentence (exit 2
via the CLI's ConfigError) when Kafka says no. A broker that is merely unreachable is not a
configuration error: the check gives up quietly after its timeout and the service's own retries
take over. Without SASL there is nothing to check and no extra round trip.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import ConfigError, KafkaSettings

CHECK_TIMEOUT_S = 10.0

# The check's own client logs nothing: its findings are the one sentence below.
_SILENT = logging.getLogger("medpubsub.access")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def check_access(
    kafka: KafkaSettings, service: str, topic: str, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """Raise `ConfigError` when Kafka refuses `service`'s login or its Describe of `topic`."""
    if not kafka.kafka_security_protocol.startswith("SASL"):
        return
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            refused.append(error)

    config = common_config(kafka, f"{service}-access-check")
    admin = AdminClient(config | {"error_cb": on_error, "logger": _SILENT})
    who = f"user {kafka.kafka_sasl_username!r} ({service})"
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            metadata = admin.list_topics(topic, timeout=min(1.0, remaining))
        except KafkaException as error:
            if error.args[0].code() == KafkaError._AUTHENTICATION:
                refused.append(error.args[0])
            metadata = None
        admin.poll(0)  # serves the error callback
        if refused:
            raise ConfigError(
                f"Kafka at {kafka.kafka_bootstrap} refused to authenticate {who} with "
                f"{kafka.kafka_sasl_mechanism} (wrong username or password)"
            )
        if metadata is None:
            continue
        found = metadata.topics.get(topic)
        problem = found.error if found is not None else None
        if problem is not None and problem.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise ConfigError(
                f"Kafka at {kafka.kafka_bootstrap} does not allow {who} to describe topic "
                f"{topic} (no ACL for it)"
            )
        return
