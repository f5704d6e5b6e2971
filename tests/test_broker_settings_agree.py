"""The Strimzi Kafka and the embedded broker run the makers' group and transactions alike.

Crash detection (the makers' KIP-848 session), join speed and the clean-up of a killed maker's
open transaction decide the latency of every scenario: a setting changed in one broker and not in
the other would make the local figures say nothing about the cluster.
"""

from __future__ import annotations

import pytest
import yaml

from pytest_medpubsub.kafka.embedded import _SERVER_SETTINGS
from tests.conftest import PROJECT

SHARED = [
    "group.initial.rebalance.delay.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.min.heartbeat.interval.ms",
    "group.consumer.session.timeout.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.assignment.interval.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "offsets.topic.num.partitions",
    "transaction.state.log.num.partitions",
]


def _strimzi_config() -> dict[str, object]:
    documents = yaml.safe_load_all((PROJECT / "k8s" / "base" / "kafka.yaml").read_text())
    [kafka] = [document for document in documents if document and document["kind"] == "Kafka"]
    config: dict[str, object] = kafka["spec"]["kafka"]["config"]
    return config


@pytest.mark.parametrize("setting", SHARED)
def test_both_brokers_have_the_same(setting: str) -> None:
    strimzi = _strimzi_config()

    assert setting in strimzi, f"k8s/base/kafka.yaml does not set {setting}"
    assert str(strimzi[setting]) == _SERVER_SETTINGS[setting]
