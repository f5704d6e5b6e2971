"""The broker a run uses: an external one given by the user, or the embedded one, topics created."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Producer

from medpubsub.kafka_clients import producer_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress, project
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.embedded import HOST, EmbeddedKafka
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.kafka.topics import DEFAULT_TOPICS, TopicSpec, ensure_topics, read_topic_specs
from pytest_medpubsub.waiting import wait_until


def system_topics() -> list[TopicSpec]:
    """The topics of the KafkaTopic manifests; the built-in defaults outside a checkout."""
    try:
        return read_topic_specs(project.project_dir() / project.TOPICS_MANIFEST)
    except project.ProjectNotFound as error:
        progress.say(f"using built-in topic defaults: {error}")
        return list(DEFAULT_TOPICS)


@contextmanager
def running_broker(
    external: str | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
    host: str = HOST,
    advertise: str | None = None,
    *,
    secure: bool = False,
) -> Iterator[tuple[KafkaSettings, EmbeddedKafka | None]]:
    """Yield Kafka settings (and the embedded broker, when one was started) with topics created.

    Without `data_dir` the broker lives in a temporary directory removed afterwards; with it, the
    data stays for the next start. `host` and `advertise` are the embedded broker's bind and
    advertised addresses (see `EmbeddedKafka`). `secure` starts it with SASL/SCRAM and ACLs; the
    settings yielded are then the harness's admin identity (`broker.credentials` has the others).
    """
    if external:
        kafka = KafkaSettings(kafka_bootstrap=external)
        ensure_topics(kafka, system_topics())
        yield kafka, None
        return
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="medpubsub-kafka-")) if data_dir is None else data_dir
    broker = EmbeddedKafka(directory, port=port, host=host, advertise=advertise, secure=secure)
    try:
        broker.start()
        ensure_topics(broker.kafka, system_topics())
        warm_up_coordinators(broker.kafka)
        yield broker.kafka, broker
    finally:
        broker.stop()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def warm_up_coordinators(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Load the group and transaction coordinators before anyone needs them.

    A new broker creates `__consumer_offsets` and `__transaction_state` on first use and answers
    "coordinator load in progress" meanwhile; doing it here keeps that out of the first maker's
    latency and the scaler's first poll.
    """
    with progress.step("Loading the group and transaction coordinators"):
        with OffsetReader(kafka, "medpubsub-warm-up", kafka.orders_topic) as reader:
            wait_until(reader.partitions, bool, timeout_s, "the group coordinator to answer")
        producer = Producer(quiet(producer_config(kafka, "medpubsub-warm-up", "medpubsub-warm-up")))
        producer.init_transactions(timeout_s)
