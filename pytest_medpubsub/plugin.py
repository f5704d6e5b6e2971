"""The medpubsub pytest plugin: options, fixtures and the SLO marker (entry point `medpubsub`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.jars import KafkaUnavailable


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("medpubsub", "medpubsub: the system under test and its platform")
    group.addoption(
        "--medpubsub-kafka",
        metavar="HOST:PORT",
        help="local platform: use this running broker instead of starting the embedded one",
    )


def pytest_configure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:

        def write(line: str) -> None:
            reporter.ensure_newline()
            reporter.write_line(f"[medpubsub] {line}")

        progress.sink = write


def pytest_unconfigure(config: pytest.Config) -> None:
    progress.sink = None


@pytest.fixture(scope="session")
def medpubsub_kafka(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers of a real Kafka with the system's topics (embedded broker, one a session)."""
    from pytest_medpubsub.kafka.broker import running_broker

    external = request.config.getoption("--medpubsub-kafka")
    try:
        with running_broker(external=external) as (kafka, _):
            yield kafka.kafka_bootstrap
    except KafkaUnavailable as error:
        pytest.fail(str(error), pytrace=False)
