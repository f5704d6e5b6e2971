"""An order is committed once, whichever makers believe they own its partition.

A starved maker (CPU, a long GC-like pause, SIGSTOP) misses its heartbeats: the group coordinator
expires its session and gives its partitions to another maker, which makes the same orders again.
When the starved maker wakes up, its order threads are still in the middle of those orders. Had
they committed, the order would be made twice: the group coordinator accepts a transactional offset
commit from a member at its current epoch whatever partition it names (Kafka 4.3), and the maker
rejoins the group within a heartbeat of waking up.

SIGSTOP stands for the starved CPU here: nothing of the maker runs, not even librdkafka's
heartbeats, exactly as on a machine at load 26. The other tests give two makers the same
partition on purpose, the state such a lost session ends in, and hold each moment of the
hand-over: registration fences the earlier holder, and the offset is read again after it.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.producers import PartitionProducers, transactional_factory
from pytest_medpubsub.waiting import wait_until

from .in_process import in_process_maker
from .kafka_io import (
    STARTED,
    ReaderFactory,
    ServiceFactory,
    TestTopics,
    an_order,
    committed_offset,
    maker_mid_order,
    makers_of_orders_made_once,
    makers_of_tabs_made_once,
    produce,
)


def test_an_order_whose_maker_s_session_expires_mid_order_is_made_once(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    # One worker: the order's 6 tabs are made one after the other (12 s), so the first maker is
    # still making it long after it wakes up and has rejoined the group.
    order = an_order(tabs_count=6)
    settings = {"MEDICINE_MAX_ORDERS": 0, "MEDICINE_IDLE_TIMEOUT_SECONDS": 20}
    first = maker_mid_order(topics, service, order, MEDICINE_MAX_WORKERS=1, **settings)
    first_name = first.wait_for_output(STARTED, timeout_s=1)["name"]
    # The second maker owns nothing (one partition) until the first one's session expires.
    second = service("medicine", topics.environment(MEDICINE_MAX_WORKERS=1, **settings))
    second_name = second.wait_for_output(STARTED, timeout_s=15)["name"]

    os.kill(first.pid, signal.SIGSTOP)
    try:
        # Frozen past its session (1 s): the partition moves, and the second maker makes the order.
        second.wait_for_output(rf"making order {order.order_id}", timeout_s=40)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    for maker in (first, second):
        assert maker.wait_exit(timeout_s=90) in (0, 1), maker.output()
    committed = [record.json() for record in reader(topics, topics.deliveries).read_to_end(30)]

    tabs = Counter(str(record["tab_id"]) for record in committed)
    expected = Counter(f"{order.order_id}:{index}" for index in range(order.tabs_count))
    makers = {str(record["maker"]) for record in committed}
    assert tabs == expected, (makers, first.output(), second.output())
    assert committed_offset(topics) == 1
    # Either maker may have it, never both. The first wakes up with its timers run out and
    # commits at once, rejoined at a fresh member epoch, unless the second's registration fenced
    # it first. When the first was first, the second left the partition: it found the offset
    # moved, or the partition went back to the first, whose registration fenced it.
    assert makers in ({first_name}, {second_name})


def test_two_makers_that_both_believe_they_own_a_partition_make_its_order_once(
    topics: TestTopics, reader: ReaderFactory
) -> None:
    """The state every lost session or missed revocation ends in, reached on purpose.

    Both makers are given the partition directly (no group membership, so the coordinator
    validates no member epoch: it takes their offset commits whatever it believes), and both make
    the same order at once. The zombie took the partition first and finishes first; the owner's
    registration in between must make the zombie's commit fail, so the order is made once.
    """
    order = an_order(tabs_count=3)
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    partition = [TopicPartition(topics.orders, 0)]
    zombie = in_process_maker(topics, f"zombie-{uuid.uuid4().hex[:6]}", tab_seconds=3.0)
    owner = in_process_maker(topics, f"owner-{uuid.uuid4().hex[:6]}", tab_seconds=3.0)
    try:
        zombie.maker.on_assign(zombie.consumer, partition)
        wait_until(zombie.step, lambda seen: seen[0] == 1, 30, "the zombie to start it", 0)
        owner.maker.on_assign(owner.consumer, partition)  # registers: fences the zombie
        wait_until(
            lambda: (zombie.step(), owner.step()),
            lambda seen: seen[0][0] == seen[1][0] == 0,
            60,
            "both makers to settle the order",
            0,
        )
    finally:
        for each in (zombie, owner):
            each.maker.close()

    assert makers_of_tabs_made_once(reader, topics, order) == {owner.name}
    assert owner.maker.tally.made == 1
    assert zombie.maker.tally.made == 0
    assert "fenced" in str(zombie.maker.failure)
    assert committed_offset(topics) == 1


def test_a_maker_whose_partition_was_committed_while_it_registered_gives_its_copy_up(
    topics: TestTopics, reader: ReaderFactory
) -> None:
    """The moment between a new owner's first read of the offset and its registration.

    A revoked maker's departing orders commit in this moment (maker.py, `on_revoke`), and so
    would a zombie's. The owner starts making from where it read the partition, and registers
    meanwhile; the zombie commits that very order before the registration fences it. The owner
    must find the offset moved when it reads it again, give its copy up, and go on with the
    partition: the order is made once, by the zombie, and the next one by the owner.
    """
    order, next_order = an_order(tabs_count=3), an_order(tabs_count=2)
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    partition = [TopicPartition(topics.orders, 0)]
    zombie_committed = threading.Event()
    zombie = in_process_maker(topics, f"zombie-{uuid.uuid4().hex[:6]}", tab_seconds=1.0)
    owner = in_process_maker(
        topics,
        f"owner-{uuid.uuid4().hex[:6]}",
        tab_seconds=1.0,
        before_registering=lambda: zombie_committed.wait(30),
    )
    try:
        zombie.maker.on_assign(zombie.consumer, partition)
        wait_until(zombie.step, lambda seen: seen[0] == 1, 30, "the zombie to start it", 0)
        owner.maker.on_assign(owner.consumer, partition)  # reads offset 0, registers later
        wait_until(
            lambda: (zombie.step(), owner.step()),
            lambda seen: seen[0][1] == 1 and seen[1][0] == 1,
            30,
            "the zombie to commit while the owner makes the same order",
            0,
        )
        zombie_committed.set()
        wait_until(owner.step, lambda seen: seen[0] == 0, 30, "the owner to give its copy up", 0)
        produce(topics.bootstrap, topics.orders, [next_order.to_bytes()])
        wait_until(owner.step, lambda seen: seen[1] == 1, 30, "the owner to make the next one", 0)
    finally:
        zombie_committed.set()
        for each in (zombie, owner):
            each.maker.close()

    assert makers_of_orders_made_once(reader, topics, order, next_order) == {
        order.order_id: {zombie.name},
        next_order.order_id: {owner.name},
    }
    assert owner.maker.failure is None
    assert owner.maker.tally.made == 1
    assert committed_offset(topics) == 2


@pytest.mark.parametrize(
    "next_owner_registers",
    [
        pytest.param("after the order is made", id="made-where-it-began"),
        pytest.param("while the order is made", id="fenced-and-made-by-the-next-owner"),
    ],
)
def test_an_order_in_flight_on_a_revoked_partition_is_made_once_by_whoever_comes_first(
    topics: TestTopics, reader: ReaderFactory, next_owner_registers: str
) -> None:
    """A revocation waits for nothing: the order in flight goes on (maker.py, `on_revoke`).

    Made before the next owner registers, it commits where it began, and the next owner gives
    its own copy up; made after, its commit fails as fenced, which is no fault of its maker,
    and the next owner makes it. Once, either way.
    """
    order = an_order(tabs_count=3)
    produce(topics.bootstrap, topics.orders, [order.to_bytes()])
    partition = [TopicPartition(topics.orders, 0)]
    old_settled = threading.Event()
    wait_for_old = next_owner_registers == "after the order is made"
    old = in_process_maker(topics, f"old-{uuid.uuid4().hex[:6]}", tab_seconds=3.0)
    new = in_process_maker(
        topics,
        f"new-{uuid.uuid4().hex[:6]}",
        tab_seconds=3.0,
        before_registering=lambda: wait_for_old and old_settled.wait(30),
    )
    try:
        old.maker.on_assign(old.consumer, partition)
        wait_until(
            lambda: (old.step(), old.producers.ready_keys()),
            lambda seen: seen[0][0] == 1 and seen[1] == [(topics.orders, 0)],
            30,
            "the old owner to start it, its partition registered",
            0,
        )
        old.maker.on_revoke(old.consumer, partition)
        assert old.maker.in_flight == 1  # the order goes on after the revocation
        new.maker.on_assign(new.consumer, partition)

        def both() -> tuple[tuple[int, int, str | None], ...]:
            seen = (old.step(), new.step())
            if seen[0][0] == 0:
                old_settled.set()
            return seen

        wait_until(
            both,
            lambda seen: seen[0][0] == seen[1][0] == 0 and seen[0][1] + seen[1][1] == 1,
            60,
            "one of them to make it, and both to settle it",
            0,
        )
    finally:
        old_settled.set()
        for each in (old, new):
            each.maker.close()

    made_by = old if wait_for_old else new
    assert makers_of_tabs_made_once(reader, topics, order) == {made_by.name}
    assert (old.maker.tally.made, new.maker.tally.made) == ((1, 0) if wait_for_old else (0, 1))
    assert old.maker.failure is None
    assert new.maker.failure is None
    assert committed_offset(topics) == 1


def test_a_registration_still_under_way_at_hand_over_never_fences_the_next_owner(
    topics: TestTopics,
) -> None:
    """A maker given a partition and asked for it back before its registration is done.

    This is how every platform starts: the first warm maker is given every partition, and half
    of them go to the second a moment later. Had the first maker's registration reached the
    coordinator after the second's, it would have fenced the rightful owner's first commit (the
    owner then fails and is replaced). The hand-over must cancel it and wait for it to end.
    """
    key = (topics.orders, 0)
    release = threading.Event()
    make_old = transactional_factory(topics.kafka, f"old-{uuid.uuid4().hex[:6]}")

    def registering_slowly(transactional_id: str) -> Producer:
        release.wait(30)  # the registration is under way, its request not sent yet
        return make_old(transactional_id)

    old = PartitionProducers(
        registering_slowly, topics.group, stopping=lambda: False, sweep=topics.sweep
    )
    group = Consumer(consumer_config(topics.kafka, client_id="hand-over", group_id=topics.group))
    old.begin([key], group.consumer_group_metadata)
    old_registration = old.get(key)
    assert old_registration is not None
    handover = threading.Thread(target=old.drop, args=([key],), name="hand-over")
    handover.start()  # returns once the old registration has ended
    new = PartitionProducers(
        transactional_factory(topics.kafka, f"new-{uuid.uuid4().hex[:6]}"),
        topics.group,
        stopping=lambda: False,
        sweep=topics.sweep,
    )
    new.begin([key], group.consumer_group_metadata)
    registration = new.get(key)
    assert registration is not None
    assert registration.registered.wait(30), registration.problem
    release.set()  # from here on, a registration of the old owner would fence the new one
    handover.join(30)
    assert not handover.is_alive()
    assert old_registration.ended.is_set()
    assert old_registration.producer is None  # cancelled before it reached the coordinator

    producer = registration.producer
    assert producer is not None
    producer.begin_transaction()
    producer.produce(topics.deliveries, b"committed by the partition's owner")
    producer.commit_transaction(10)  # raises (fenced) had the old owner registered after
    new.drop_all()
    group.close()
