"""A maker losing partitions while it has orders in flight on them, on a real broker: the orders
go on, what is made before the next owner registers commits where it began, the rest is fenced
and the next owner makes it; every order once (system/medicine/maker.py, `on_revoke`)."""

from __future__ import annotations

from medpubsub.messages import Order

from .kafka_io import (
    STARTED,
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    expected_tabs,
    produce,
    tab_counts,
)


def test_a_revocation_with_orders_in_flight_hands_over_nothing_twice(
    four_partitions: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    topics = four_partitions
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 8}
    first = service("medicine", topics.environment(**settings))
    first.wait_for_output(STARTED, timeout_s=15)
    orders: list[Order] = []

    def place(count: int) -> None:
        for _ in range(count):
            order = an_order(tabs_count=2)
            produce(topics.bootstrap, topics.orders, [order.to_bytes()], partition=len(orders) % 4)
            orders.append(order)

    place(8)
    first.wait_for_output(r"making order", timeout_s=20)
    # A second maker joins while the first has orders in flight on every partition: some of
    # them are revoked from it mid-order.
    second = service("medicine", topics.environment(**settings))
    second.wait_for_output(STARTED, timeout_s=15)
    place(8)  # the group now shares the partitions
    for maker in (first, second):
        assert maker.wait_exit(timeout_s=60) == 0, maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    assert tab_counts(committed) == expected_tabs(*orders)
    assert sum(committed_offset(topics, partition) for partition in range(4)) == 16


def test_orders_far_from_made_at_a_revocation_are_fenced_and_their_next_owner_makes_them_once(
    four_partitions: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    """A maker giving partitions away does not wait for their orders to be made, which would hold
    back the orders of the partitions it keeps. Those far from made are still being made when the
    next owner registers (about 1 s after it got them): their commits fail as fenced, which is no
    fault of their maker (it exits 0), and their next owner makes them, once."""
    topics = four_partitions
    # Tabs of 12 s: the second maker joins (its start can take seconds on a loaded machine) while
    # every order of the first is still far from made.
    settings = {
        "MEDICINE_MAX_ORDERS": 0,
        "MEDICINE_IDLE_TIMEOUT_SECONDS": 6,
        "MEDICINE_TAB_SECONDS": 12,
    }
    first = service("medicine", topics.environment(**settings))
    first_name = first.wait_for_output(STARTED, timeout_s=15)["name"]
    orders = [an_order(tabs_count=2) for _ in range(4)]
    for partition, order in enumerate(orders):
        produce(topics.bootstrap, topics.orders, [order.to_bytes()], partition=partition)
    for order in orders:
        first.wait_for_output(rf"making order {order.order_id}", timeout_s=20)

    second = service("medicine", topics.environment(**settings))
    second.wait_for_output(STARTED, timeout_s=15)
    for maker in (first, second):
        assert maker.wait_exit(timeout_s=60) == 0, maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    assert tab_counts(committed) == expected_tabs(*orders)
    assert [committed_offset(topics, partition) for partition in range(4)] == [1, 1, 1, 1]
    makers_by_order: dict[str, set[str]] = {}
    for tab in committed:
        makers_by_order.setdefault(str(tab["order_id"]), set()).add(str(tab["maker"]))
    # Every order the first maker had started; those fenced were made by the second.
    handed_over = [order for order, makers in makers_by_order.items() if makers != {first_name}]
    assert handed_over, f"every order was made by {first_name}: {makers_by_order}"
    assert all(len(makers) == 1 for makers in makers_by_order.values()), makers_by_order
