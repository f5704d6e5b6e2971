"""The embedded broker: real readiness, data kept across a restart, nothing left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config, producer_config, reader_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes
from pytest_medpubsub.kafka.addresses import host_address
from pytest_medpubsub.kafka.embedded import EmbeddedKafka, _new_cluster_id
from pytest_medpubsub.kafka.jars import java_major
from pytest_medpubsub.kafka.topics import TopicSpec, ensure_topics


def _read_all(kafka: KafkaSettings, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(reader_config(kafka, "test-embedded"))
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(200):  # bounded: at most ~20 s
            message = consumer.poll(0.1)
            value = message.value() if message is not None and message.error() is None else None
            if value is not None:
                values.append(value)
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


@pytest.mark.kafka
def test_a_restart_on_the_same_data_dir_keeps_address_and_data(tmp_path: Path) -> None:
    broker = EmbeddedKafka(tmp_path / "data")
    try:
        bootstrap = broker.start()
        ensure_topics(broker.kafka, [TopicSpec("restart.check", 2)])
        producer = Producer(producer_config(broker.kafka, "test-embedded"))
        for index in range(10):
            producer.produce("restart.check", value=f"m{index}".encode())
        assert producer.flush(15) == 0
        broker.kill()  # a crash, not a clean shutdown
        assert broker.pid is None
        assert broker.start() == bootstrap
        values = _read_all(broker.kafka, "restart.check", 10)
        assert sorted(values) == sorted(f"m{index}".encode() for index in range(10))
        assert broker.log_file.exists()
    finally:
        broker.stop()
    assert broker.pid is None


def test_the_session_broker_has_the_system_topics(medpubsub_kafka: str) -> None:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(common_config(KafkaSettings(kafka_bootstrap=medpubsub_kafka), "t"))
    topics = metadata.list_topics(timeout=10).topics
    assert {"tabs.orders", "tabs.deliveries", "tabs.dlq"} <= set(topics)
    assert len(topics["tabs.orders"].partitions) >= 12


@pytest.mark.kafka
def test_medpubsub_kafka_prints_bootstrap_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "medpubsub", "kafka", "--data-dir", str(tmp_path / "d")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()  # the JVM start bounds this: ~5-30 s
        assert line.startswith("bootstrap=127.0.0.1:"), line
        assert processes.stop(process, grace_s=30) == 0
        state = (tmp_path / "d" / "embedded.json").read_text()
        assert line.rpartition(":")[2] in state
    finally:
        processes.kill(process)


def test_a_missing_java_is_one_sentence_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "JAVA_HOME": str(tmp_path / "nojava")}
    env.pop("KAFKA_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "medpubsub", "kafka"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "install Java 17+ with Maven, or set KAFKA_HOME" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_java_versions_are_read_from_both_version_schemes() -> None:
    assert java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert java_major('java version "1.8.0_392"') == 8
    assert java_major("garbage") is None


def test_cluster_ids_never_look_like_an_option() -> None:
    # One id in 64 would start with "-" and break the storage tool's argument parsing.
    ids = [_new_cluster_id() for _ in range(2000)]
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    assert all(len(cluster_id) == 22 for cluster_id in ids)


# --------------------------------------------------------------------------- other addresses


@pytest.fixture(scope="module")
def own_address() -> str:
    """This machine's non-loopback address: what pods of a cluster on this machine dial."""
    address = host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to bind or advertise")
    return address


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_the_broker_binds_and_advertises_the_given_address(
    tmp_path: Path, own_address: str
) -> None:
    """Bound to the host's address only: clients get that address back, loopback is refused."""
    broker = EmbeddedKafka(tmp_path / "data", host=own_address)
    try:
        bootstrap = broker.start()
        host, _, port = bootstrap.rpartition(":")
        assert host == own_address
        kafka = KafkaSettings(kafka_bootstrap=bootstrap)
        brokers = AdminClient(common_config(kafka, "t")).list_topics(timeout=10).brokers
        assert [(str(b.host), b.port) for b in brokers.values()] == [(own_address, int(port))]
        assert _refused("127.0.0.1", int(port))
        ensure_topics(kafka, [TopicSpec("address.check", 1)])
        producer = Producer(producer_config(kafka, "test-embedded"))
        producer.produce("address.check", value=b"via the host's address")
        assert producer.flush(15) == 0
        assert _read_all(kafka, "address.check", 1) == [b"via the host's address"]
        config = (tmp_path / "data" / "server.properties").read_text()
        assert "CONTROLLER://127.0.0.1:" in config, "the controller stays on loopback"
    finally:
        broker.stop()
    assert broker.pid is None


def test_medpubsub_kafka_binds_everything_and_prints_the_advertised_address(
    tmp_path: Path, own_address: str
) -> None:
    command = [sys.executable, "-m", "medpubsub", "kafka", "--data-dir", str(tmp_path / "d"),
               "--host", "0.0.0.0", "--advertise", own_address]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()  # the JVM start bounds this: ~5-30 s
        assert line.startswith(f"bootstrap={own_address}:"), line
        port = int(line.rpartition(":")[2])
        # Bound to every address: loopback answers too, and tells the client the advertised one.
        local = KafkaSettings(kafka_bootstrap=f"127.0.0.1:{port}")
        brokers = AdminClient(common_config(local, "t")).list_topics(timeout=10).brokers
        assert [(str(b.host), b.port) for b in brokers.values()] == [(own_address, port)]
        assert processes.stop(process, grace_s=30) == 0
    finally:
        processes.kill(process)


def test_binding_every_address_without_advertising_one_is_a_configuration_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medpubsub", "kafka", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--advertise" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
