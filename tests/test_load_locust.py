"""load/patients.py run by the real `locust` command against the real embedded broker.

Each test orders to topics of its own, so its orders reach no maker and disturb no other test.
Locust always runs as a child process (its gevent monkey-patching stays out of pytest).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from medpubsub.kafka_clients import reader_config
from medpubsub.messages import Order
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.topics import TopicSpec, ensure_topics
from pytest_medpubsub.load import (
    LocustProcess,
    acknowledged_ids,
    kafka_environment,
    locustfile,
    run_locust,
)
from pytest_medpubsub.waiting import wait_until

# Everything here is bounded: a Locust run that hangs is stopped by pid past its deadline.
RUN_TIMEOUT_S = 60.0


@pytest.fixture
def kafka(medpubsub_kafka: str) -> KafkaSettings:
    """The session's broker with a fresh set of topics for this test."""
    prefix = f"load-test.{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(
        kafka_bootstrap=medpubsub_kafka,
        orders_topic=f"{prefix}.orders",
        deliveries_topic=f"{prefix}.deliveries",
        dlq_topic=f"{prefix}.dlq",
    )
    ensure_topics(
        settings,
        [
            TopicSpec(settings.orders_topic, 4),
            TopicSpec(settings.deliveries_topic, 1),
            TopicSpec(settings.dlq_topic, 1),
        ],
    )
    return settings


def test_a_ramp_produces_one_order_per_patient_and_period(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    result = run_locust(kafka, "2x4,0x1", tmp_path, timeout_s=RUN_TIMEOUT_S, period_s=0.5)

    assert result.passed, result.describe()
    # 2 patients x 4 s at 2 orders/s = 16; the first one waits for metadata.
    assert 12 <= result.stats.requests <= 18, result.describe()
    assert result.stats.failures == 0
    assert result.acknowledged_orders == result.stats.requests
    assert result.stats.p95_ms is not None
    assert (tmp_path / "locust_stats.csv").exists()
    assert (tmp_path / "locust.html").exists()

    produced = read_orders(kafka, result.stats.requests)
    assert {order.order_id for order in produced} == set(acknowledged_ids(tmp_path))
    assert {order.patient_id for order in produced} == {"locust-1", "locust-2"}
    assert all(isinstance(order, Order) and 1 <= order.tabs_count <= 30 for order in produced)


def test_stopping_early_ends_like_the_ramp_with_every_order_counted(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    load = LocustProcess(kafka, "1x600", tmp_path).start()
    try:
        load.wait_for_acknowledgements(2, timeout_s=30)
        result = load.stop(grace_s=30)
    finally:
        load.kill()

    assert result.stopped_early
    assert not result.timed_out
    assert result.passed, result.describe()
    assert result.duration_s < 60
    assert result.acknowledged_orders == result.stats.requests >= 2


@pytest.mark.slow
def test_undelivered_orders_are_failures_and_a_nonzero_exit(tmp_path: Path) -> None:
    unreachable = KafkaSettings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}")
    result = run_locust(unreachable, "1x3", tmp_path, timeout_s=RUN_TIMEOUT_S, ack_timeout_s=1)

    assert result.exit_code == 1
    assert result.stats.failures >= 1
    assert result.acknowledged_orders == 0
    assert not result.passed
    assert any("timed out" in error.lower() for error in result.errors), result.errors


@pytest.mark.slow
def test_without_kafka_or_a_local_system_it_says_so_in_one_line(tmp_path: Path) -> None:
    completed = _locust(
        {"MEDPUBSUB_STATE_FILE": str(tmp_path / "local.json")}, "-u", "1", "-t", "5s"
    )
    assert completed.returncode == 1
    lines = _own_lines(completed.stderr)
    assert lines == [
        f"load/patients.py: set MEDPUBSUB_KAFKA_BOOTSTRAP, or no local medpubsub is running "
        f"({tmp_path / 'local.json'} is missing); start one with `medpubsub up`"
    ]
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MEDPUBSUB_RAMP", "1x10,ax3", "step 2 ('ax3') is not PATIENTSxSECONDS"),
        ("ORBITAL_MAX_TABS_COUNT", "99", "ORBITAL_MAX_TABS_COUNT='99' is invalid"),
        ("MEDPUBSUB_LOAD_ACK_TIMEOUT_SECONDS", "soon", "give a positive number of seconds"),
    ],
)
@pytest.mark.slow
def test_a_bad_setting_is_one_sentence_and_exit_status_2(
    kafka: KafkaSettings, variable: str, value: str, expected: str
) -> None:
    completed = _locust(kafka_environment(kafka) | {variable: value}, "-u", "1", "-t", "5s")
    assert completed.returncode == 2
    lines = _own_lines(completed.stderr)
    assert len(lines) == 1
    assert expected in lines[0]
    assert "Traceback" not in completed.stderr


def read_orders(kafka: KafkaSettings, count: int, timeout_s: float = 30.0) -> list[Order]:
    """The first `count` orders on the test's orders topic (fails, saying how many, if fewer)."""
    consumer = Consumer(reader_config(kafka, f"load-test-{uuid.uuid4().hex[:8]}"))
    try:
        metadata = consumer.list_topics(kafka.orders_topic, timeout=10)
        partitions = metadata.topics[kafka.orders_topic].partitions
        consumer.assign(
            [TopicPartition(kafka.orders_topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        orders: list[Order] = []

        def read() -> int:
            for message in consumer.consume(100, 0.5):
                if message.error() is None:
                    orders.append(Order.model_validate_json(message.value() or b""))
            return len(orders)

        wait_until(read, lambda seen: seen >= count, timeout_s, f"{count} orders", 0.0)
        return orders
    finally:
        consumer.close()


def _locust(env: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDPUBSUB_", "ORBITAL_"))}
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile()), "--headless", *arguments],
        env=base | dict(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def _own_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("load/patients.py:")]


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
