"""Transactional producers: one per partition a maker owns, its id bound to that partition.

Why the transactional id names the partition (`medicine-<group>-<topic>-<partition>`), and not
the maker:
- Exactly once must not depend on a maker knowing in time that it lost a partition. A maker
  starved of CPU misses its heartbeats, the group coordinator gives its partitions to another
  maker, and its order threads wake up in the middle of orders the new owner makes again. The
  consumer group's member epoch in `send_offsets_to_transaction` does not stop them: the
  coordinator accepts a transactional offset commit from a member at its current epoch whatever
  partition it names (Kafka 4.3), and the starved maker rejoins within a heartbeat of waking.
- With the id bound to the partition, the new owner's `init_transactions` fences every earlier
  holder of that partition; the new owner then reads where the partition stands again, before
  its first commit there: a zombie's commit either finished before (the offset moved past where
  the new owner started: it leaves the partition rather than commit an order twice) or fails as
  fenced. A crashed maker's open transaction is aborted at that moment too, not after
  `transaction.timeout.ms`. Registering happens while the first orders are made (`Registration`),
  and ends with a sweep (sweep.py): a transaction of the id whose markers Kafka lost is ended as
  aborted before the new owner's first commit could make it visible.
- Orders are made outside the transaction and only their tabs and offset are committed in it
  (transaction.py), so a partition's orders still overlap while being made; only their commits,
  milliseconds each and in offset order anyway (lines.py), take turns on the partition's producer.

The dispatcher and the one-order maker keep one producer each (`registered_producer`), with ids
derived from what they own (the dispatcher's group, the order).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from medpubsub.kafka_clients import producer_config
from medpubsub.medicine.sweep import Sweep, SweepFailed
from medpubsub.settings import KafkaSettings

log = logging.getLogger("medpubsub.medicine")

# How long a producer keeps trying to reach the transaction coordinator.
INIT_TIMEOUT_S = 60.0
INIT_ATTEMPT_S = 2.0
# How long handing a partition over waits for its registration to end (its attempt under way
# ends within INIT_ATTEMPT_S; no other is started once the partition is dropped).
REGISTRATION_END_TIMEOUT_S = INIT_ATTEMPT_S + 3.0
# A transaction is open only while an order's tabs and offset are committed (transaction.py):
# milliseconds, or a few seconds for a starved maker. The broker aborts one left open by a killed
# maker after this, unless the partition's next owner registered first (which aborts it at once).
TRANSACTION_TIMEOUT_MS = 10_000
# The longest a new owner puts off registering a partition (`PartitionProducers._register`).
FENCE_DELAY_MAX_S = 1.0
# Every transactional id of the system starts with this (the medicine identity's ACL prefix).
TRANSACTIONAL_PREFIX = "medicine-"

PartitionKey = tuple[str, int]
ProducerFactory = Callable[[str], Producer]


class ProducerUnavailable(Exception):
    """A transactional producer could not be registered with the coordinator."""


def transactional_factory(
    kafka: KafkaSettings, client_id: str, transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS
) -> ProducerFactory:
    """Makes a producer of `client_id` for a given transactional id."""
    return lambda transactional_id: Producer(
        producer_config(
            kafka,
            client_id=client_id,
            transactional_id=transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
        )
    )


def fence_delay_s(tab_seconds: float) -> float:
    """How long a new owner puts off registering a partition: half a making time, at most 1 s.

    Its own first orders there are made a making time after it starts them, so a registration
    done by then (a fraction of a second on a free CPU) costs them nothing.
    """
    return min(FENCE_DELAY_MAX_S, tab_seconds / 2)


def registered_producer(
    make_producer: ProducerFactory,
    transactional_id: str,
    stopping: Callable[[], bool],
    sweep: Callable[[Producer], None],
) -> Producer | None:
    """A producer registered as `transactional_id` (fencing earlier ones), and swept; None when
    stopped.

    `sweep` ends, as aborted, what an earlier holder of the id left open where Kafka lost the
    markers (sweep.py); until it has, the producer's first commit could make that visible too.
    """
    producer = make_producer(transactional_id)
    if not _init_transactions(producer, stopping, transactional_id):
        return None
    try:
        sweep(producer)
    except SweepFailed as failed:
        raise ProducerUnavailable(f"{transactional_id}: {failed}") from failed
    return None if stopping() else producer


def partition_transactional_id(group_id: str, key: PartitionKey) -> str:
    """The id every owner of this partition in this group uses, in turn."""
    topic, partition = key
    return f"{TRANSACTIONAL_PREFIX}{group_id}-{topic}-{partition}"


@dataclass(eq=False)
class Registration:
    """One partition's producer being registered, then checked, while its first orders are made.

    Registering takes a round trip to the transaction coordinator (and, on a secured cluster, a
    SASL handshake) per partition: seconds for a maker taking 20 partitions on a small CPU share.
    So a maker starts making a new partition's orders at once and registers meanwhile; an order
    commits only once its partition is `ready`: registered, and its committed offset read again
    afterwards and found where the maker started (a zombie that committed in between would have
    moved it; the maker then leaves the partition to the next owner rather than commit again).
    """

    key: PartitionKey
    # Where the maker starts the partition: set once its stable committed offset is read, which
    # may be after registering (the sweep is what makes a lost transaction's offset readable).
    start_offset: int | None = None
    registered: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    # Set when the partition is handed over: no registration may start after that.
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Set once the registering thread is done (registered, failed or cancelled).
    ended: threading.Event = field(default_factory=threading.Event)
    producer: Producer | None = None
    problem: str | None = None

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self.registered.set()
        self.ready.set()

    @property
    def can_commit(self) -> bool:
        """Registered and checked, without a problem: its orders commit at once."""
        return self.ready.is_set() and self.problem is None

    def wait_ready(self, timeout_s: float) -> Producer:
        """The registered, checked producer; raises `ProducerUnavailable` otherwise."""
        if not self.ready.wait(timeout_s):
            raise ProducerUnavailable(
                f"{self.key[0]}[{self.key[1]}] was not registered within {timeout_s:.0f} s"
            )
        if self.problem is not None or self.producer is None:
            raise ProducerUnavailable(self.problem or "stopped while registering")
        return self.producer


class PartitionProducers:
    """The producers of a maker's partitions: registered on assignment, dropped on revocation.

    `begin` and `drop` are called from the main thread (the rebalance callbacks); order threads
    wait on a partition's `Registration`.
    """

    def __init__(
        self,
        make_producer: ProducerFactory,
        group_id: str,
        stopping: Callable[[], bool],
        *,
        sweep: Sweep,
        fence_delay_s: float = 0.0,
    ) -> None:
        self._make_producer = make_producer
        self._group_id = group_id
        self._stopping = stopping
        self._sweep = sweep
        self._fence_delay_s = fence_delay_s
        self._lock = threading.Lock()
        self._owned: dict[PartitionKey, Registration] = {}

    def begin(self, keys: Iterable[PartitionKey], group_metadata: Callable[[], Any]) -> None:
        """Register (and sweep) a producer for each partition, in the background.

        `group_metadata` gives the group's metadata as the maker knows it now, for the sweep's
        offset commit. Each partition is checked once `started` says where it starts.
        """
        for key in keys:
            registration = Registration(key)
            with self._lock:
                self._owned[key] = registration
            threading.Thread(
                target=self._register,
                args=(registration, group_metadata),
                name=f"register-{key[0]}[{key[1]}]",
                daemon=True,
            ).start()

    def started(self, key: PartitionKey, offset: int) -> None:
        """The partition starts at `offset` (its stable committed offset): check it from there."""
        registration = self.get(key)
        if registration is not None:
            registration.start_offset = offset

    def _register(self, registration: Registration, group_metadata: Callable[[], Any]) -> None:
        def stopping() -> bool:
            return self._stopping() or registration.cancelled.is_set()

        # Registering fences the partition's previous holder, whose orders in flight there commit
        # until then (maker.py, `on_revoke`). This maker's own first orders there are made only a
        # making time from now, so registering a little later costs them nothing and lets more
        # of the previous holder's orders end where they began, instead of being made again.
        deadline = time.monotonic() + self._fence_delay_s
        while not stopping() and (left := deadline - time.monotonic()) > 0:
            registration.cancelled.wait(min(left, 0.1))
        try:
            registration.producer = registered_producer(
                self._make_producer,
                partition_transactional_id(self._group_id, registration.key),
                stopping,
                lambda producer: self._sweep(
                    producer, TopicPartition(*registration.key), group_metadata, stopping
                ),
            )
        except ProducerUnavailable as error:
            registration.fail(str(error))
            return
        else:
            if registration.producer is None:
                registration.fail("stopped while registering")
            else:
                registration.registered.set()
        finally:
            registration.ended.set()

    def get(self, key: PartitionKey) -> Registration | None:
        with self._lock:
            return self._owned.get(key)

    def registering(self) -> bool:
        """Some partition owned cannot commit yet (not registered, or not checked)."""
        with self._lock:
            return any(not each.ready.is_set() for each in self._owned.values())

    def registered_unchecked(self) -> list[Registration]:
        """Registered partitions whose committed offset has not been read again yet."""
        with self._lock:
            owned = list(self._owned.values())
        return [
            each
            for each in owned
            if each.registered.is_set()
            and not each.ready.is_set()
            and each.start_offset is not None
        ]

    def ready_keys(self) -> list[PartitionKey]:
        """Every partition owned, when each can commit at once (registered, checked); else none.

        All or nothing: a maker is ready to serve (the readiness file, readiness.py) only when
        no order of its would wait for a registration.
        """
        with self._lock:
            owned = list(self._owned.values())
        if all(each.can_commit for each in owned):
            return sorted(each.key for each in owned)
        return []

    def drop(self, keys: Iterable[PartitionKey]) -> None:
        """The partitions go to another maker: their producers are not used again.

        Nothing to flush: a partition with orders in flight on a registered producer departs
        instead (`depart`), so a dropped one has no transaction open, and a fenced one refuses
        every call. Dropped, they close.

        A registration still under way is cancelled, and waited for: the group gives the
        partition to its next owner once this returns (the revocation is acknowledged), and a
        registration of this maker that reached the coordinator after the next owner's would
        fence the next owner instead (measured: two warm makers, one given every partition and
        half of them taken back 76 ms later, fenced the other's first commit 3 s on).
        """
        with self._lock:
            dropped = [self._owned.pop(key) for key in keys if key in self._owned]
        for registration in dropped:
            registration.cancelled.set()
            registration.fail("the partition went to another maker")
        deadline = time.monotonic() + REGISTRATION_END_TIMEOUT_S
        for registration in dropped:
            if not registration.ended.wait(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "%s[%d]: handed over while its registration is still under way",
                    *registration.key,
                )

    def depart(self, keys: Iterable[PartitionKey]) -> set[PartitionKey]:
        """The partitions go to another maker, but their registered producers stay in use.

        Their orders in flight commit on them until the next owner's registration fences them
        (maker.py, `on_revoke`); each order thread holds its partition's `Registration`, and the
        producer closes once the last of them lets go. Only registered, checked partitions may
        depart: one still registering stays, for `drop` to cancel, so that it can never fence
        the next owner. Returns the partitions that departed.
        """
        with self._lock:
            departed = {key for key in keys if key in self._owned and self._owned[key].can_commit}
            for key in departed:
                del self._owned[key]
        return departed

    def drop_all(self) -> None:
        with self._lock:
            keys = list(self._owned)
        self.drop(keys)


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
