"""The medicine maker against a real broker: tabs exactly once, in parallel, bad input to the DLQ.

Makers run as `python -m medpubsub medicine` subprocesses on the test's own topics. Assertions are
on what Kafka holds (read_committed, as the observer reads), and on the tabs' own timestamps
rather than on the test's wall clock.
"""

from __future__ import annotations

import base64
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from medpubsub.messages import SeedOrder, Tab

from .kafka_io import (
    STARTED,
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    maker_mid_order,
    produce,
    tabs_only,
)

TAB_SECONDS = 2.0


def tabs_of(documents: list[dict[str, object]]) -> list[Tab]:
    return sorted((Tab.model_validate(document) for document in documents), key=lambda t: t.index)


def test_an_order_becomes_exactly_its_tabs(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    order, next_order = an_order(tabs_count=5), an_order(tabs_count=1)
    produce(topics.bootstrap, topics.orders, [order.to_bytes(), next_order.to_bytes()])
    # MEDICINE_MAX_ORDERS is 1 by default: the maker makes the first order only.
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=20))

    assert maker.wait_exit(timeout_s=30) == 0, maker.output()
    name = maker.wait_for_output(STARTED, timeout_s=1)["name"]
    assert "done after 1 orders and 0 dead letters" in maker.output()
    deliveries = reader(topics, topics.deliveries)
    deliveries.wait_for_count(5, timeout_s=10)
    records = deliveries.read_to_end(timeout_s=10)
    tabs = tabs_of([record.json() for record in records])

    assert len(records) == 5
    assert [tab.index for tab in tabs] == [0, 1, 2, 3, 4]
    assert {record.key for record in records} == {order.order_id.encode()}
    for tab in tabs:
        assert tab.tab_id == f"{order.order_id}:{tab.index}"
        assert (tab.order_id, tab.patient_id, tab.tabs_count) == (
            order.order_id,
            order.patient_id,
            order.tabs_count,
        )
        assert tab.ordered_at_ns == order.ordered_at_ns
        assert tab.made_at_ns - order.ordered_at_ns >= TAB_SECONDS * 1e9
        assert tab.maker == name
    assert reader(topics, topics.dlq).read() == []
    # The order's offset was committed with its tabs, and the next order is left for the next job.
    assert committed_offset(topics) == 1


def test_the_tabs_of_a_thirty_tab_order_are_made_in_parallel(
    topics: TestTopics,
    service: ServiceFactory,
    reader: ReaderFactory,
    record_property: Callable[[str, object], None],
) -> None:
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=20))
    maker.wait_for_output(STARTED, timeout_s=15)
    order = an_order(tabs_count=30)
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])

    deliveries = reader(topics, topics.deliveries)
    records = deliveries.wait_for_count(30, timeout_s=20)
    seen_all_ns = time.time_ns()
    made = [tab.made_at_ns for tab in tabs_of([record.json() for record in records])]

    assert len(records) == 30
    # Made together: sequential tabs would be 2 s apart; one thread per tab starts them at once.
    assert max(made) - min(made) < 1e9
    # The whole order (joining the group included) took less than two tabs' time.
    assert max(made) - order.ordered_at_ns < 2 * TAB_SECONDS * 1e9
    latency_s = (seen_all_ns - order.ordered_at_ns) / 1e9
    record_property("end_to_end_latency_s", round(latency_s, 3))
    print(f"30-tab order: ordered → all 30 tabs readable (read_committed) in {latency_s:.2f} s")
    assert maker.wait_exit(timeout_s=10) == 0


BAD_RECORDS: list[tuple[str, bytes | None, str]] = [
    ("not UTF-8", b"\xff\xfe{}", "not UTF-8"),
    ("not JSON", b'{"order_id": ', "not JSON"),
    ("not an object", b"[1, 2, 3]", "not a JSON object but list"),
    (
        "missing field",
        b'{"patient_id": "p", "tabs_count": 3, "ordered_at_ns": 1}',
        "order_id: Field required",
    ),
    (
        "wrong type",
        json.dumps(
            {
                "order_id": str(uuid.uuid4()),
                "patient_id": "p",
                "tabs_count": "3",
                "ordered_at_ns": 1,
            }
        ).encode(),
        "tabs_count: Input should be a valid integer",
    ),
    (
        "zero tabs",
        json.dumps(
            {"order_id": str(uuid.uuid4()), "patient_id": "p", "tabs_count": 0, "ordered_at_ns": 1}
        ).encode(),
        "tabs_count: Input should be greater than or equal to 1",
    ),
    (
        "31 tabs",
        json.dumps(
            {"order_id": str(uuid.uuid4()), "patient_id": "p", "tabs_count": 31, "ordered_at_ns": 1}
        ).encode(),
        "tabs_count: Input should be less than or equal to 30",
    ),
    ("no value", None, "empty record"),
]


def test_every_kind_of_bad_input_is_dead_lettered_and_the_maker_goes_on(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    good = an_order(tabs_count=2)
    values = [value for _, value, _ in BAD_RECORDS] + [good.to_bytes()]
    offsets = produce(topics.bootstrap, topics.orders, values)
    # MEDICINE_MAX_ORDERS=1: dead letters do not count, so the maker must reach the good order.
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=20))

    assert maker.wait_exit(timeout_s=30) == 0, maker.output()
    assert f"done after 1 orders and {len(BAD_RECORDS)} dead letters" in maker.output()
    letters = reader(topics, topics.dlq).wait_for_count(len(BAD_RECORDS), timeout_s=10)
    tabs = reader(topics, topics.deliveries).wait_for_count(2, timeout_s=10)

    by_offset = {letter.json()["offset"]: letter.json() for letter in letters}
    assert sorted(by_offset) == offsets[: len(BAD_RECORDS)]
    for (kind, value, reason), offset in zip(BAD_RECORDS, offsets, strict=False):
        letter = by_offset[offset]
        assert reason in letter["reason"], kind
        assert (letter["topic"], letter["partition"]) == (topics.orders, 0), kind
        if letter["payload_base64"]:
            assert base64.b64decode(letter["payload"]) == value, kind
        else:
            assert letter["payload"].encode() == (value or b""), kind
    assert by_offset[offsets[0]]["payload_base64"] is True
    assert len(letters) == len(BAD_RECORDS)
    assert {tab.json()["order_id"] for tab in tabs} == {good.order_id}


def test_a_seed_order_is_made_under_its_derived_stable_id_among_other_orders(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    seed = SeedOrder(patient_id="seed-patient", tabs_count=3, order_timestamp_ns=time.time_ns())
    current = an_order(tabs_count=2)
    [offset, _] = produce(topics.bootstrap, topics.orders, [seed.to_bytes(), current.to_bytes()])
    expected = seed.to_order(topics.orders, 0, offset)
    # No order limit: the maker makes both orders, one after the other, then idles out.
    maker = service(
        "medicine",
        topics.environment(MEDICINE_MAX_ORDERS=0, MEDICINE_IDLE_TIMEOUT_SECONDS=3),
    )

    assert maker.wait_exit(timeout_s=30) == 0, maker.output()
    assert "after 2 orders and 0 dead letters" in maker.output()
    deliveries = reader(topics, topics.deliveries)
    deliveries.wait_for_count(5, timeout_s=10)
    tabs = [Tab.model_validate(document) for document in deliveries.documents()]
    seed_tabs = tabs_of([tab.model_dump() for tab in tabs if tab.patient_id == "seed-patient"])

    assert [tab.tab_id for tab in seed_tabs] == [f"{expected.order_id}:{i}" for i in range(3)]
    assert {tab.ordered_at_ns for tab in seed_tabs} == {seed.order_timestamp_ns}
    assert {tab.order_id for tab in tabs} == {expected.order_id, current.order_id}
    assert committed_offset(topics) == 2


@pytest.mark.parametrize("topics", [{"max.message.bytes": "2000"}], indirect=True)
def test_a_transaction_that_cannot_commit_is_aborted_retried_then_left_to_the_next_job(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # Not JSON, and its dead letter is larger than the dead-letter topic accepts: the broker
    # refuses it, the transaction becomes abortable, the maker aborts and retries the record.
    poison, good = b"x" * 3000, an_order(tabs_count=1)
    produce(topics.bootstrap, topics.orders, [poison, good.to_bytes()])
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=20))

    assert maker.wait_exit(timeout_s=60) == 1, maker.output()
    assert maker.output().count("transaction of") == 3  # three attempts, each aborted
    assert "giving the order up to the next job after 3 attempts" in maker.output()
    assert "Traceback" not in maker.output()
    assert committed_offset(topics) < 0  # nothing committed: the next job takes the record
    assert reader(topics, topics.dlq).read_to_end(timeout_s=10) == []
    assert reader(topics, topics.deliveries).read_to_end(timeout_s=10) == []


def test_a_maker_killed_mid_order_leaves_nothing_and_the_next_makes_each_tab_once(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # 15 workers for 16 tabs: two waves of 2 s, so the maker is surely mid-order when it is
    # killed right after it says it is making the order.
    order = an_order(tabs_count=16)
    settings = {"MEDICINE_MAX_WORKERS": 15, "MEDICINE_IDLE_TIMEOUT_SECONDS": 30}
    first = maker_mid_order(topics, service, order, **settings)

    assert first.signal_and_wait(signal.SIGKILL, timeout_s=5) == -signal.SIGKILL
    second = service("medicine", topics.environment(**settings))
    second_name = second.wait_for_output(STARTED, timeout_s=15)["name"]
    # The second maker gets the partition once the killed member's session expires (1 s).
    assert second.wait_exit(timeout_s=30) == 0, second.output()
    deliveries = reader(topics, topics.deliveries)
    deliveries.wait_for_count(16, timeout_s=30)
    committed = deliveries.read_to_end(timeout_s=10)

    tab_ids = Counter(record.json()["tab_id"] for record in committed)
    assert tab_ids == Counter(f"{order.order_id}:{index}" for index in range(16))
    assert {record.json()["maker"] for record in committed} == {second_name}
    # Tabs are written only in the commit: the killed maker left nothing, not even aborted tabs.
    uncommitted = reader(topics, topics.deliveries, committed_only=False)
    assert len(tabs_only(uncommitted.read_to_end(timeout_s=10))) == 16


def test_sigterm_mid_order_exits_0_writes_nothing_and_the_next_maker_makes_the_order(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    order = an_order(tabs_count=2)
    # One worker: tab 0 is made at 2 s and tab 1 at 4 s, so the order is mid-way for a while.
    first = maker_mid_order(
        topics, service, order, MEDICINE_MAX_WORKERS=1, MEDICINE_IDLE_TIMEOUT_SECONDS=30
    )

    assert first.signal_and_wait(signal.SIGTERM, timeout_s=5) == 0, first.output()
    assert "stopped by SIGTERM after 0 orders" in first.output()
    second = service("medicine", topics.environment())
    assert second.wait_exit(timeout_s=30) == 0, second.output()
    second_name = second.wait_for_output(STARTED, timeout_s=1)["name"]
    deliveries = reader(topics, topics.deliveries)
    deliveries.wait_for_count(2, timeout_s=10)
    committed = deliveries.read_to_end(timeout_s=10)
    # Tabs are written only in the commit: the stopped maker left nothing, not even aborted tabs
    # for read_uncommitted readers.
    uncommitted = reader(topics, topics.deliveries, committed_only=False)
    assert len(tabs_only(uncommitted.read_to_end(timeout_s=10))) == 2

    assert sorted(record.json()["tab_id"] for record in committed) == [
        f"{order.order_id}:0",
        f"{order.order_id}:1",
    ]
    assert {record.json()["maker"] for record in committed} == {second_name}


def test_an_idle_maker_stops_on_sigterm_with_status_0(
    topics: TestTopics, service: ServiceFactory
) -> None:
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=60))
    maker.wait_for_output(STARTED, timeout_s=15)

    assert maker.signal_and_wait(signal.SIGTERM, timeout_s=5) == 0, maker.output()
    assert "stopped by SIGTERM after 0 orders" in maker.output()


def test_a_maker_with_no_orders_exits_0_after_the_idle_timeout(
    topics: TestTopics, service: ServiceFactory
) -> None:
    maker = service("medicine", topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=1))

    assert maker.wait_exit(timeout_s=20) == 0, maker.output()
    assert "idle for" in maker.output()
