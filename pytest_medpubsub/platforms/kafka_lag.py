"""The makers' consumer-group lag, read from Kafka the way KEDA's Kafka scaler reads it.

Every platform reports `lag()` through here, so that "lag" in a scenario, a report and the
scaler is one number. It delegates to the harness's `OffsetReader`, which the local platform's
KEDA arithmetic already reads: committed offsets of the group and read_committed log-end offsets
of the topic, an uncommitted partition counting its whole log (the ScaledJob's
`offsetResetPolicy: earliest`).
"""

from __future__ import annotations

from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.offsets import OffsetReader

LAG_TIMEOUT_S = 10.0


def group_lag(kafka: KafkaSettings, group: str, topic: str) -> int:
    """Total lag of `group` on `topic` now (short-lived clients, closed before returning)."""
    with OffsetReader(kafka, group, topic, timeout_s=LAG_TIMEOUT_S) as reader:
        return reader.total_lag()
