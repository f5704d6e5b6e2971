"""The dispatcher design against a real broker: one maker per order, each order made once.

`medpubsub make-order` makes the order in MEDICINE_ORDER; `medpubsub dispatcher` consumes the
orders and starts such a maker per order. The faults are SIGKILLs at the moments that matter for
exactly-once: a maker mid-order (its retry fences it), a maker right after its commit (its retry
finds the order's marker), and the dispatcher mid-stream (its next life reads the uncommitted
orders again and watches the makers of the first).
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.medicine.one_order import DispatchedOrder, marker_group
from medpubsub.messages import Order
from pytest_medpubsub import processes
from pytest_medpubsub.waiting import wait_until

from .kafka_io import (
    QUIET,
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    produce,
    tabs_only,
)

MAKING = r"medicine (?P<name>\S+): making order"


def dispatched(topics: TestTopics, order: Order) -> DispatchedOrder:
    [offset] = produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    return DispatchedOrder(
        topic=topics.orders, partition=0, offset=offset, value=order.to_bytes().decode()
    )


def marker_offset(topics: TestTopics, order_id: str) -> int:
    admin = AdminClient(common_config(topics.kafka, "test-admin") | QUIET)
    group = marker_group(order_id)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topics.orders, 0)])
    [committed] = admin.list_consumer_group_offsets([request])[group].result(15).topic_partitions
    return int(committed.offset)


def test_a_maker_killed_mid_order_leaves_nothing_and_its_retry_makes_each_tab_once(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # 15 workers for 16 tabs: two waves of 2 s, so the first maker is surely mid-order when it is
    # killed right after it says it is making the order.
    order = an_order(16)
    environment = topics.environment(
        MEDICINE_MAX_WORKERS=15, MEDICINE_ORDER=dispatched(topics, order).model_dump_json()
    )
    first = service("make-order", environment)
    first.wait_for_output(MAKING, timeout_s=20)
    assert first.signal_and_wait(signal.SIGKILL, timeout_s=5) == -signal.SIGKILL

    retry = service("make-order", environment)
    assert retry.wait_exit(timeout_s=30) == 0, retry.output()
    retry_name = retry.wait_for_output(MAKING, timeout_s=1)["name"]
    deliveries = reader(topics, topics.deliveries)
    deliveries.wait_for_count(16, timeout_s=10)
    committed = deliveries.read_to_end(timeout_s=10)

    assert Counter(record.json()["tab_id"] for record in committed) == Counter(
        f"{order.order_id}:{index}" for index in range(16)
    )
    assert {record.json()["maker"] for record in committed} == {retry_name}
    # Tabs are written only in the commit: the killed maker left nothing, not even aborted tabs.
    uncommitted = reader(topics, topics.deliveries, committed_only=False)
    assert len(tabs_only(uncommitted.read_to_end(timeout_s=10))) == 16
    assert (
        marker_offset(topics, order.order_id)
        == json.loads(environment["MEDICINE_ORDER"])["offset"] + 1
    )


def test_a_maker_killed_right_after_its_commit_is_not_made_again_by_its_retry(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    order = an_order(3)
    environment = topics.environment(MEDICINE_ORDER=dispatched(topics, order).model_dump_json())
    first = service("make-order", environment)
    deliveries = reader(topics, topics.deliveries)
    # The tabs become readable the moment the transaction committed: kill the maker then.
    deliveries.wait_for_count(3, timeout_s=30)
    processes.kill(first.process)

    retry = service("make-order", environment)
    assert retry.wait_exit(timeout_s=30) == 0, retry.output()
    assert f"order {order.order_id} was already made" in retry.output()
    committed = deliveries.read_to_end(timeout_s=10)
    assert sorted(record.json()["tab_id"] for record in committed) == [
        f"{order.order_id}:{index}" for index in range(3)
    ]


def test_a_maker_without_an_order_is_a_configuration_error(
    topics: TestTopics, service: ServiceFactory
) -> None:
    maker = service("make-order", topics.environment(MEDICINE_ORDER='{"topic": "t"}'))
    assert maker.wait_exit(timeout_s=20) == 2
    assert (
        maker.output().strip().splitlines()[-1].startswith("medpubsub make-order: MEDICINE_ORDER")
    )


def _leftover_makers(state_file: Path) -> list[int]:
    if not state_file.exists():
        return []
    return [
        entry["pid"]
        for entry in json.loads(state_file.read_text())["makers"]
        if entry.get("pid") and processes.is_alive(entry["pid"])
    ]


def test_the_dispatcher_killed_mid_stream_loses_and_duplicates_nothing(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory, tmp_path: Path
) -> None:
    state_file = tmp_path / "dispatcher" / "makers.json"
    environment = topics.environment(
        DISPATCHER_GROUP_ID=f"{topics.group}-dispatcher", DISPATCHER_STATE_FILE=str(state_file)
    )
    first = service("dispatcher", environment)
    first.wait_for_output("dispatching orders", timeout_s=30)
    before = [an_order(1 + index % 5) for index in range(12)]
    produce(topics.bootstrap, topics.orders, [b"not an order", *(o.to_bytes() for o in before)])
    try:
        # Killed while it starts makers: some orders dispatched and committed, some dispatched
        # but not committed yet, makers of its life still running.
        wait_until(
            lambda: _leftover_makers(state_file), bool, 20, "a dispatched maker", interval_s=0.01
        )
        assert first.signal_and_wait(signal.SIGKILL, timeout_s=5) == -signal.SIGKILL
        after = [an_order(2) for _ in range(5)]
        produce(topics.bootstrap, topics.orders, [order.to_bytes() for order in after])
        second = service("dispatcher", environment)
        orders = before + after
        expected = Counter(
            f"{order.order_id}:{index}" for order in orders for index in range(order.tabs_count)
        )
        deliveries = reader(topics, topics.deliveries)
        deliveries.wait_for_count(sum(expected.values()), timeout_s=90)
        wait_until(
            lambda: _leftover_makers(state_file),
            lambda pids: not pids,
            30,
            "every maker to end",
        )
        committed = deliveries.read_to_end(timeout_s=10)
        assert Counter(record.json()["tab_id"] for record in committed) == expected
        letters = reader(topics, topics.dlq).read_to_end(timeout_s=10)
        assert [letter.json()["payload"] for letter in letters] == ["not an order"]
        assert second.process.poll() is None, second.output()
    finally:
        for pid in _leftover_makers(state_file):
            processes.stop_pid(pid, grace_s=5)


def test_a_transaction_left_open_on_its_group_does_not_stop_the_dispatcher(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory, tmp_path: Path
) -> None:
    """A broker restarted mid-commit can leave the dispatcher's offsets pending for ever (its
    transaction marker skipped, service.py); an open transaction holding offsets of the group is
    the same to a reader. The dispatcher must go on: a read_committed offset fetch would wait
    here until the transaction timed out (60 s), after the deliveries' deadline."""
    group = f"{topics.group}-dispatcher"
    order = an_order(3)
    [offset] = produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    hanging = Producer(
        common_config(topics.kafka, "test-hanging")
        | QUIET
        | {"transactional.id": f"{group}-hanging", "transaction.timeout.ms": 60_000}
    )
    hanging.init_transactions(15)
    hanging.begin_transaction()
    member = Consumer(common_config(topics.kafka, "test-hanging") | QUIET | {"group.id": group})
    try:
        hanging.send_offsets_to_transaction(
            [TopicPartition(topics.orders, 0, offset + 1)], member.consumer_group_metadata(), 15
        )
        state_file = tmp_path / "dispatcher" / "makers.json"
        environment = topics.environment(
            DISPATCHER_GROUP_ID=group, DISPATCHER_STATE_FILE=str(state_file)
        )
        dispatcher = service("dispatcher", environment)
        deliveries = reader(topics, topics.deliveries)
        deliveries.wait_for_count(order.tabs_count, timeout_s=30)
        tabs = [record.json()["tab_id"] for record in deliveries.read_to_end(timeout_s=10)]
        assert sorted(tabs) == [f"{order.order_id}:{index}" for index in range(order.tabs_count)]
        assert dispatcher.process.poll() is None, dispatcher.output()
    finally:
        hanging.abort_transaction(15)
        member.close()
