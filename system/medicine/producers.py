"""The maker's transactional producers: one per order in flight, kept for the next order.

Why one producer per order in flight (and not one shared transaction, or one per partition):
- A producer holds one open transaction at a time, and an order's tabs and its offset must commit
  together and alone: a shared transaction would make every order in it wait for the slowest,
  and one bad record would abort its neighbours' tabs.
- One per partition would still make a maker that owns one partition take its orders one after
  another, which is the wait this design removes; and partitions move between makers.
- So each order takes an idle producer from this pool (or a new one), and gives it back when its
  transaction is settled. The pool grows to the most orders the maker had in flight at once and
  no further; each producer registers with the coordinator once (`init_transactions`), so the
  round trip is paid per producer, not per order. Registering takes a few hundred milliseconds,
  which an order must not wait for: two are made at start, and whenever fewer than two are idle
  another one is registered in the background, so an order takes a ready producer.

Each producer has its own transactional id, `medicine-<maker>-<n>`: unique per maker, as the maker
name is, so no maker fences another. A killed maker's open transactions are not fenced either:
the broker aborts them after `transaction.timeout.ms`, and the consumer group's epoch in
`send_offsets_to_transaction` keeps a zombie from committing an offset that moved on (KIP-447).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

from medpubsub.kafka_clients import producer_config
from medpubsub.settings import KafkaSettings

log = logging.getLogger("medpubsub.medicine")

# How long a producer keeps trying to reach the transaction coordinator.
INIT_TIMEOUT_S = 60.0
INIT_ATTEMPT_S = 2.0
WARM_PRODUCERS = 2
# Idle producers kept ready for the next orders; below this, one more is registered in the
# background.
SPARE_PRODUCERS = 2


def transactional_pool(
    kafka: KafkaSettings,
    client_id: str,
    name: str,
    stopping: Callable[[], bool],
    transaction_timeout_ms: int = 10_000,
) -> ProducerPool:
    """A pool of producers of `client_id`, with transactional ids `medicine-<name>-<n>`."""
    return ProducerPool(
        lambda transactional_id: Producer(
            producer_config(
                kafka,
                client_id=client_id,
                transactional_id=transactional_id,
                transaction_timeout_ms=transaction_timeout_ms,
            )
        ),
        name,
        stopping,
    )


class ProducerUnavailable(Exception):
    """A transactional producer could not be registered with the coordinator."""


class ProducerPool:
    """Thread-safe pool of initialised transactional producers."""

    def __init__(
        self,
        make_producer: Callable[[str], Producer],
        name: str,
        stopping: Callable[[], bool],
    ) -> None:
        self._make_producer = make_producer
        self._name = name
        self._stopping = stopping
        self._lock = threading.Lock()
        self._idle: list[Producer] = []
        self._all: list[Producer] = []
        self._created = 0
        self._topping_up = False

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._all)

    def warm_up(self, count: int = WARM_PRODUCERS) -> bool:
        """Create `count` producers now; False when stopped before they were ready."""
        made = []
        try:
            for _ in range(count):
                producer = self._create()
                if producer is None:
                    return False
                made.append(producer)
        finally:
            for producer in made:
                self.release(producer)
        return True

    def acquire(self) -> Producer | None:
        """An idle producer, or a new one; None when stopped while registering it."""
        with self._lock:
            producer = self._idle.pop() if self._idle else None
            top_up = len(self._idle) < SPARE_PRODUCERS and not self._topping_up
            self._topping_up = self._topping_up or top_up
        if top_up:
            threading.Thread(target=self._top_up, name="producer-spare", daemon=True).start()
        return producer if producer is not None else self._create()

    def _top_up(self) -> None:
        """Register one spare producer off the order's path (a failure leaves it to `acquire`)."""
        try:
            spare = self._create()
            if spare is not None:
                self.release(spare)
        except ProducerUnavailable as error:
            log.warning("%s: no spare producer: %s", self._name, error)
        finally:
            with self._lock:
                self._topping_up = False

    def release(self, producer: Producer) -> None:
        with self._lock:
            self._idle.append(producer)

    def discard(self, producer: Producer) -> None:
        """A producer that failed for good (fenced, fatal): never hand it out again."""
        with self._lock:
            if producer in self._idle:
                self._idle.remove(producer)
            if producer in self._all:
                self._all.remove(producer)

    def flush(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            producers = list(self._all)
        for producer in producers:
            producer.flush(timeout_s)

    def _create(self) -> Producer | None:
        with self._lock:
            self._created += 1
            transactional_id = f"medicine-{self._name}-{self._created}"
        producer = self._make_producer(transactional_id)
        if not _init_transactions(producer, self._stopping, transactional_id):
            return None
        with self._lock:
            self._all.append(producer)
        return producer


def _init_transactions(producer: Producer, stopping: Callable[[], bool], what: str) -> bool:
    """Register with the transaction coordinator; False when stopped before it answered."""
    deadline = time.monotonic() + INIT_TIMEOUT_S
    while not stopping():
        try:
            producer.init_transactions(INIT_ATTEMPT_S)
            return True
        except KafkaException as exception:
            error = exception.args[0] if exception.args else None
            retriable = isinstance(error, KafkaError) and error.retriable()
            if not retriable or time.monotonic() >= deadline:
                raise ProducerUnavailable(
                    f"cannot start transactions for {what}: {exception}"
                ) from exception
            log.info("%s: the transaction coordinator is not ready yet: %s", what, error)
    return False
