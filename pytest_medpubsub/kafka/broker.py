"""The broker a run uses: an external one given by the user, or the embedded one, topics created."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress, project
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.topics import DEFAULT_TOPICS, TopicSpec, ensure_topics, read_topic_specs


def system_topics() -> list[TopicSpec]:
    """The topics of the KafkaTopic manifests; the built-in defaults outside a checkout."""
    try:
        return read_topic_specs(project.project_dir() / project.TOPICS_MANIFEST)
    except project.ProjectNotFound as error:
        progress.say(f"using built-in topic defaults: {error}")
        return list(DEFAULT_TOPICS)


@contextmanager
def running_broker(
    external: str | None = None, data_dir: Path | None = None, port: int | None = None
) -> Iterator[tuple[KafkaSettings, EmbeddedKafka | None]]:
    """Yield Kafka settings (and the embedded broker, when one was started) with topics created.

    Without `data_dir` the broker lives in a temporary directory removed afterwards; with it, the
    data stays for the next start.
    """
    if external:
        kafka = KafkaSettings(kafka_bootstrap=external)
        ensure_topics(kafka, system_topics())
        yield kafka, None
        return
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="medpubsub-kafka-")) if data_dir is None else data_dir
    broker = EmbeddedKafka(directory, port=port)
    try:
        broker.start()
        ensure_topics(broker.kafka, system_topics())
        yield broker.kafka, broker
    finally:
        broker.stop()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
