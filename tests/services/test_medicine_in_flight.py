"""A maker with several orders in flight, against a real broker: as fast as its workers allow,
and still exactly once on every failure path (a failed order in the middle of a partition, a
SIGKILL with orders in flight, a broker restart; revocations: test_medicine_revocation.py).

Assertions are on what Kafka holds (read_committed, as the observer reads) and on the tabs' own
timestamps, not on the test's wall clock.
"""

from __future__ import annotations

import signal

import pytest

from medpubsub.messages import Order
from pytest_medpubsub.kafka.embedded import EmbeddedKafka

from .kafka_io import (
    STARTED,
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    create_topics,
    expected_tabs,
    produce,
    tab_counts,
)

TAB_SECONDS = 2.0
NS = 1_000_000_000


def make_to_the_end(
    topics: TestTopics,
    service: ServiceFactory,
    reader: ReaderFactory,
    orders: list[Order],
    **settings: str | float,
) -> list[dict[str, object]]:
    """Put `orders` on partition 0, let one maker make all of them and exit; the committed tabs."""
    produce(topics.bootstrap, topics.orders, [order.to_bytes() for order in orders])
    environment = {"MEDICINE_MAX_ORDERS": len(orders), "MEDICINE_IDLE_TIMEOUT_SECONDS": 20}
    maker = service("medicine", topics.environment(**(environment | settings)))

    assert maker.wait_exit(timeout_s=40) == 0, maker.output()
    assert f"done after {len(orders)} orders and 0 dead letters" in maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(10)]
    assert tab_counts(committed) == expected_tabs(*orders)
    return committed


def made_at(committed: list[dict[str, object]], order: Order) -> list[int]:
    return [int(str(tab["made_at_ns"])) for tab in committed if tab["order_id"] == order.order_id]


def test_orders_of_one_partition_are_made_at_the_same_time(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    orders = [an_order(tabs_count=5) for _ in range(4)]
    committed = make_to_the_end(topics, service, reader, orders)
    made = [stamp for order in orders for stamp in made_at(committed, order)]

    # One partition, four orders, 20 workers of 30: all four in flight at once. One after the
    # other, the last tab would be made 6 s after the first.
    assert max(made) - min(made) < 1 * NS
    assert committed_offset(topics) == 4


def test_an_order_that_does_not_fit_waits_for_free_workers_then_starts_at_once(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    first, second = an_order(tabs_count=8), an_order(tabs_count=8)
    committed = make_to_the_end(topics, service, reader, [first, second], MEDICINE_MAX_WORKERS=10)

    # 8 + 8 tabs do not fit in 10 workers: the second order starts when the first releases its
    # workers, one tab time later, and not much more.
    gap_s = (min(made_at(committed, second)) - max(made_at(committed, first))) / NS
    assert TAB_SECONDS * 0.9 <= gap_s < TAB_SECONDS + 1.0, gap_s


def test_one_order_at_a_time_when_so_configured(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    first, second = an_order(tabs_count=1), an_order(tabs_count=1)
    committed = make_to_the_end(
        topics, service, reader, [first, second], MEDICINE_MAX_ORDERS_IN_FLIGHT=1
    )

    # The previous behaviour, which the bench compares against.
    assert (
        min(made_at(committed, second)) - max(made_at(committed, first)) >= TAB_SECONDS * 0.9 * NS
    )


@pytest.mark.parametrize("topics", [{"max.message.bytes": "2000"}], indirect=True)
def test_a_failed_order_holds_back_the_later_ones_of_its_partition_and_nothing_is_skipped(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # Offset 1's dead letter is larger than the DLQ accepts: its transaction fails every time.
    # The order after it is made meanwhile, but must not commit past it.
    before, after = an_order(tabs_count=2), an_order(tabs_count=2)
    produce(topics.bootstrap, topics.orders, [before.to_bytes(), b"x" * 3000, after.to_bytes()])
    maker = service(
        "medicine", topics.environment(MEDICINE_MAX_ORDERS=0, MEDICINE_IDLE_TIMEOUT_SECONDS=20)
    )

    assert maker.wait_exit(timeout_s=60) == 1, maker.output()
    assert "giving the order up to the next job after 3 attempts" in maker.output()
    assert "waits behind an order that was not committed" in maker.output()
    assert "Traceback" not in maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(10)]

    assert tab_counts(committed) == expected_tabs(before)
    assert committed_offset(topics) == 1  # the poison record and the order after it stay


def test_a_maker_killed_with_orders_in_flight_leaves_nothing_and_the_next_makes_each_once(
    four_partitions: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    topics = four_partitions
    # Two orders per partition, all in flight at once (24 tabs of 30 workers).
    orders = [an_order(tabs_count=3) for _ in range(8)]
    for index, order in enumerate(orders):
        produce(topics.bootstrap, topics.orders, [order.to_bytes()], partition=index % 4)
    # Idle for longer than the killed member's session (1 s) and its transactions (10 s) last.
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 15}
    first = service("medicine", topics.environment(**settings))
    first_name = first.wait_for_output(STARTED, timeout_s=15)["name"]
    first.wait_for_output(r"making order(.|\n)*making order(.|\n)*making order", timeout_s=20)

    assert first.signal_and_wait(signal.SIGKILL, timeout_s=5) == -signal.SIGKILL
    second = service("medicine", topics.environment(**settings))
    second_name = second.wait_for_output(STARTED, timeout_s=15)["name"]
    assert second.wait_exit(timeout_s=60) == 0, second.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    assert tab_counts(committed) == expected_tabs(*orders)
    # Whatever the first maker had made was aborted with it: every visible tab is the second's.
    assert {record["maker"] for record in committed} == {second_name} != {first_name}
    assert [committed_offset(topics, partition) for partition in range(4)] == [2, 2, 2, 2]


@pytest.mark.kafka
def test_a_broker_restart_with_orders_in_flight_loses_and_duplicates_nothing(
    own_broker: EmbeddedKafka, service: ServiceFactory, reader: ReaderFactory
) -> None:
    topics = create_topics(own_broker.bootstrap_servers, partitions=4)
    orders = [an_order(tabs_count=3) for _ in range(8)]
    for index, order in enumerate(orders):
        produce(topics.bootstrap, topics.orders, [order.to_bytes()], partition=index % 4)
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 8}
    first = service("medicine", topics.environment(**settings))
    first.wait_for_output(r"making order(.|\n)*making order(.|\n)*making order", timeout_s=30)

    own_broker.kill()  # the only broker, mid-order: commits fail or hang (watchdog)
    own_broker.start()
    # Whatever the first maker managed, a second one makes the rest once it is gone.
    first.wait_exit(timeout_s=90)
    second = service("medicine", topics.environment(**settings))
    assert second.wait_exit(timeout_s=90) == 0, second.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    assert tab_counts(committed) == expected_tabs(*orders), first.output()
    assert [committed_offset(topics, partition) for partition in range(4)] == [2, 2, 2, 2]
