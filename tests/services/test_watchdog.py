"""The maker's watchdog: a commit or abort that librdkafka never returns from ends the process.

The librdkafka defect itself (a coordinator request outliving its timeout, #5456) needs a broker
restart mid-transaction; the local broker-kill chaos scenario shows it. Here: the watchdog's
contract, its exit from a real blocked process, and that the maker guards every commit and abort
of a real transaction.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.maker import Destinations, Maker
from medpubsub.medicine.producers import PartitionProducers, transactional_factory
from medpubsub.medicine.watchdog import EXIT_FAILED, Watchdog
from medpubsub.messages import Order

from .kafka_io import TestTopics, produce


class Expiries:
    """Records what the watchdog reported, and signals the first report."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.fired = threading.Event()

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        self.fired.set()


def test_a_block_that_outlives_its_bound_is_reported_with_what_blocked() -> None:
    expiries = Expiries()
    watchdog = Watchdog("maker-7", on_expiry=expiries)

    with watchdog.guard("committing the transaction", 0.2):
        assert expiries.fired.wait(timeout=10), "the watchdog never fired"

    [message] = expiries.messages
    assert message.startswith("maker-7: committing the transaction still blocked after 0 s")
    assert "librdkafka#5456" in message


def test_a_block_that_ends_in_time_is_never_reported() -> None:
    expiries = Expiries()
    watchdog = Watchdog("maker-7", on_expiry=expiries)

    for _ in range(3):
        with watchdog.guard("aborting the transaction", 0.5):
            pass

    # Three times the bound: a timer left running would have fired by now.
    assert not expiries.fired.wait(timeout=1.5), expiries.messages


def test_the_default_expiry_ends_a_blocked_process_with_status_1() -> None:
    program = textwrap.dedent(
        """
        import logging, sys, time
        from medpubsub.medicine.watchdog import Watchdog
        logging.basicConfig(stream=sys.stderr, level=logging.INFO)
        with Watchdog("maker-9").guard("committing the transaction", 0.2):
            time.sleep(60)  # stands for a C call that never returns
        print("not reached")
        """
    )
    # The 30 s timeout is the failure mode: without the watchdog the sleep runs its full minute.
    finished = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True, timeout=30
    )

    assert finished.returncode == EXIT_FAILED, finished.stderr
    assert "maker-9: committing the transaction still blocked" in finished.stderr
    assert "not reached" not in finished.stdout


class GuardLog(Watchdog):
    """A watchdog that never fires and remembers every block it guarded."""

    def __init__(self) -> None:
        super().__init__("maker-test", on_expiry=lambda message: None)
        self.guarded: list[str] = []

    @contextmanager
    def guard(self, what: str, seconds: float) -> Iterator[None]:
        self.guarded.append(what)
        with super().guard(what, seconds):
            yield


@pytest.mark.parametrize("topics", [{"max.message.bytes": "2000"}], indirect=True)
def test_the_maker_guards_every_commit_and_every_abort(topics: TestTopics) -> None:
    order = Order(order_id=str(uuid.uuid4()), patient_id="patient-w", tabs_count=1, ordered_at_ns=1)
    # The poison record's dead letter is larger than the dead-letter topic accepts: its
    # transaction fails and is aborted.
    produce(topics.bootstrap, topics.orders, [order.to_bytes(), b"x" * 3000])
    name = f"watchdog-test-{uuid.uuid4().hex[:8]}"
    producers = PartitionProducers(
        transactional_factory(topics.kafka, name),
        topics.group,
        stopping=lambda: False,
        sweep=topics.sweep,
    )
    consumer = Consumer(consumer_config(topics.kafka, client_id=name, group_id=topics.group))
    guards = GuardLog()
    maker = Maker(
        name,
        consumer=consumer,
        producers=producers,
        destinations=Destinations(topics.deliveries, topics.dlq),
        tab_seconds=0.1,
        max_workers=30,
        stopping=lambda: False,
        watchdog=guards,
    )
    maker.subscribe(topics.orders)
    try:
        # Both records are in flight at once; the poison one commits behind the order.
        _serve_until(consumer, maker, lambda: len(guards.guarded) >= 3 and not maker.busy)
    finally:
        consumer.close()

    assert maker.tally.made == 1
    assert maker.tally.dead_lettered == 0
    # The order's commit, the poison record's failed commit, then its abort: each guarded.
    assert guards.guarded == [
        "committing the transaction",
        "committing the transaction",
        "aborting the transaction",
    ]


def _serve_until(
    consumer: Consumer, maker: Maker, done: Callable[[], bool], timeout_s: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        maker.tick()
        if done():
            return
        record = consumer.poll(0.1)
        if record is not None and record.error() is None:
            maker.offer(record)
    raise AssertionError(
        f"the maker did not settle within {timeout_s} s: made {maker.tally.made}, "
        f"{maker.in_flight} in flight"
    )
