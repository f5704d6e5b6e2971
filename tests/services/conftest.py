"""Fixtures of the service tests: per-test topics on the session's real broker, readers, services.

Everything a fixture starts it also stops: readers are closed, service processes are stopped by
pid (SIGTERM, then SIGKILL) and the test's topics are deleted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_medpubsub.kafka.broker import system_topics, warm_up_coordinators
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.topics import ensure_topics

from .kafka_io import (
    ReaderFactory,
    Service,
    ServiceFactory,
    TestTopics,
    TopicReader,
    create_topics,
    delete_topics,
)


@pytest.fixture
def topics(medpubsub_kafka: str, request: pytest.FixtureRequest) -> Iterator[TestTopics]:
    """This test's own orders / deliveries / dlq topics (1 partition each) and maker group.

    `@pytest.mark.parametrize("topics", [{"max.message.bytes": "2000"}], indirect=True)` gives
    the dead-letter topic a configuration.
    """
    created = create_topics(medpubsub_kafka, dlq_config=getattr(request, "param", None))
    yield created
    delete_topics(created)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker of this test's own, for faults the session's shared broker must not see (frozen,
    killed); stopped afterwards, and let run first in case the test left it stopped."""
    broker = EmbeddedKafka(tmp_path / "kafka")
    try:
        broker.start()
        ensure_topics(broker.kafka, system_topics())
        warm_up_coordinators(broker.kafka)
        yield broker
    finally:
        pid = broker.pid
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # a stopped JVM cannot act on SIGTERM
        broker.stop()


@pytest.fixture
def four_partitions(medpubsub_kafka: str) -> Iterator[TestTopics]:
    """Like `topics`, with four orders partitions (for makers that share them)."""
    created = create_topics(medpubsub_kafka, partitions=4)
    yield created
    delete_topics(created)


@pytest.fixture
def reader() -> Iterator[ReaderFactory]:
    """`reader(topics, topic, committed_only=True)`: a whole-topic reader, closed afterwards."""
    readers: list[TopicReader] = []

    def open_reader(topics: TestTopics, topic: str, *, committed_only: bool = True) -> TopicReader:
        opened = TopicReader(topics.bootstrap, topic, committed_only=committed_only)
        readers.append(opened)
        return opened

    yield open_reader
    for opened in readers:
        opened.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """`service("medicine" | "patient", environment)`: a running service, stopped afterwards."""
    started: list[Service] = []

    def start(command: str, environment: dict[str, str]) -> Service:
        log_path = tmp_path / f"{command}-{len(started)}.log"
        running = Service(command, environment, log_path)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
