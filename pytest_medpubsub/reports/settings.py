"""The settings of a run, kept in `report.json` under `settings`: what tells two runs apart.

A CI chart of p95 over weeks is only meaningful when a reader can see which runs had the
dispatcher design, a secured broker or a cluster; a copy of the report must say so on its own.
"""

from __future__ import annotations

import platform as host
import time
from importlib import metadata
from typing import Any

from pytest_medpubsub.kafka.jars import KAFKA_VERSION


def run_settings(
    *,
    name: str,
    platform: str,
    design: str,
    secure: bool,
    external_kafka: str | None = None,
    warm_makers: int | None = None,
) -> dict[str, Any]:
    """The `settings` section: the run's name, where and how it ran, and the versions in it."""
    return {
        "name": name,
        "platform": platform,
        "design": design,
        "secure": secure,
        "kafka": external_kafka or "embedded",
        "warm_makers": warm_makers,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host.node(),
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    """The versions a result depends on: ours, Kafka's (the broker the harness runs), the client
    library's, Python's."""
    import confluent_kafka

    found = {
        "medpubsub": _version("medpubsub"),
        "kafka": KAFKA_VERSION,
        "confluent-kafka": _version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "python": host.python_version(),
    }
    pytest_version = _version("pytest")
    if pytest_version != "unknown":
        found["pytest"] = pytest_version
    return found


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
