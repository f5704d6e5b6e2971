"""The warm floor stays at rest, on a real broker (system/medicine/warm.py).

Without it, every warm maker left after its idle timeout and KEDA replaced it at once: at rest, a
maker start, a rebalance and the registration of its partitions every idle timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .kafka_io import STARTED, ServiceFactory, TestTopics, create_topics, delete_topics

IDLE_S = 2
PARTITIONS = 40
STAYING = r"staying, one of at most 2 makers in the group"


@pytest.fixture
def forty_partitions(medpubsub_kafka: str) -> Iterator[TestTopics]:
    created = create_topics(medpubsub_kafka, partitions=PARTITIONS)
    yield created
    delete_topics(created)


def test_the_warm_makers_stay_through_their_idle_timeouts(
    forty_partitions: TestTopics, service: ServiceFactory
) -> None:
    warm = forty_partitions.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=IDLE_S, MEDICINE_WARM_FLOOR=2)
    first = service("medicine", warm)
    first.wait_for_output(STARTED, timeout_s=30)
    second = service("medicine", warm)
    # Each asks once per idle timeout: three times means it stayed through three of them, with
    # the partitions shared between the two.
    three_times = rf"{STAYING}[\s\S]*{STAYING}[\s\S]*{STAYING}"
    for maker in (second, first):
        maker.wait_for_output(three_times, timeout_s=60)
    assert first.process.poll() is None, first.output()
    assert second.process.poll() is None, second.output()


def test_a_warm_maker_leaves_when_idle_once_it_has_lived_its_lifetime(
    forty_partitions: TestTopics, service: ServiceFactory
) -> None:
    alone = service(
        "medicine",
        forty_partitions.environment(
            MEDICINE_IDLE_TIMEOUT_SECONDS=IDLE_S,
            MEDICINE_WARM_FLOOR=2,
            MEDICINE_WARM_LIFETIME_SECONDS=IDLE_S * 3,
        ),
    )
    alone.wait_for_output(STAYING, timeout_s=60)
    assert alone.wait_exit(timeout_s=60) == 0, alone.output()
    assert re.search(r"idle for \S+ s after 0 orders", alone.output()), alone.output()
