"""A maker that takes orders while it has free workers: several orders in flight, exactly once.

The main thread polls the group without pause and hands each record to an order thread, which
makes it and then commits it in a transaction of its own (transaction.py) on the producer of its
partition (producers.py).
An order of n tabs holds n of the maker's `max_workers` workers for its making time, so no order
waits behind another while the maker has workers free. One that does not fit waits in the maker,
its partition paused, and starts as soon as workers are released; records are started in the
order they were polled, so a large order is never overtaken for good by small ones.

Exactly once, with several orders in flight:
- each order's tabs and its offset commit in one transaction; a partition's offsets commit in
  order, never past an order that is not made (lines.py): an order behind a failed one aborts,
  and the partition is read again from the failed one;
- a revoked partition's orders in flight go on (`on_revoke` waits for nothing, so the partitions
  kept are never held back), and each commits only if it is made before the next owner's
  registration fences the partition's producer; the next owner reads the offset again after
  registering and gives up its own copies of what was committed (`_check_registrations`), so
  either maker makes an order, never both. An order of a partition still registering is handed
  over unmade: its commit and its hand-over exclude each other (lines.py);
- a partition taken over is registered under its own transactional id, which fences whoever held
  it before (a crashed maker's open transaction is aborted, a starved one's commits fail from
  then on), and swept (a transaction whose markers Kafka lost is ended as aborted, sweep.py);
  it starts at its committed offset once that offset is stable, and only a partition the group
  never committed starts at its beginning (`on_assign`); its offset is read again after the
  registration, before any of its orders commits (`_check_registrations`).
  So once a partition's latest owner has registered, no other maker can commit on it, whatever
  the makers believe about the group, and what an earlier holder committed before that is not
  made again.

Why one module of this size (over 450 lines): the poll loop, the rebalance callbacks and the
order threads' hand-back share one state (the partitions' lines, the records waiting for
workers, the workers in use) that only the main thread changes; what stands alone is already
out (lines.py, producers.py, transaction.py, committed.py, sweep.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from medpubsub.medicine.committed import committed_starts, stable_starts
from medpubsub.medicine.lines import InFlight, PartitionKey, PartitionLines
from medpubsub.medicine.producers import PartitionProducers, Registration
from medpubsub.medicine.transaction import (
    Destinations,
    MakerFailed,
    Outcome,
    Workshop,
    coordinates,
    make_in_transaction,
)
from medpubsub.medicine.watchdog import Watchdog, exit_at_once
from medpubsub.messages import Order, Rejection, parse_order

__all__ = ["Destinations", "Maker", "MakerFailed", "Outcome"]

log = logging.getLogger("medpubsub.medicine")

# A record whose transaction fails this often in a row is left to the next job.
MAX_ATTEMPTS = 3
# How long a stop waits for the orders in flight to settle (an order settles
# within its making time plus the commit and abort bounds; the watchdog ends a stuck one).
SETTLE_TIMEOUT_S = 90.0
# How long the watchdog's last words wait for the main thread to leave the group.
LEAVE_TIMEOUT_S = 2.5
# How long an order waits for its partition's producer: registering retries for up to
# producers.INIT_TIMEOUT_S, and the offset check after it is the main thread's next tick.
REGISTRATION_TIMEOUT_S = 75.0


@dataclass
class Tally:
    made: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class _Settled:
    entry: InFlight
    is_order: bool
    outcome: Outcome | None
    failure: MakerFailed | None


@dataclass
class _Waiting:
    """Records not started yet, in the order they were polled, their partitions paused."""

    records: dict[PartitionKey, Message] = field(default_factory=dict)
    # Records of a paused partition that were polled anyway (fetched before the pause): dropped,
    # and the partition is read again from the first of them when it is resumed.
    reread_from: dict[PartitionKey, int] = field(default_factory=dict)


class Maker:
    """Takes records from the main thread and makes each on an order thread (module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        consumer: Consumer,
        producers: PartitionProducers,
        destinations: Destinations,
        tab_seconds: float,
        max_workers: int,
        stopping: Callable[[], bool],
        max_orders_in_flight: int = 0,
        max_orders: int = 0,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.max_workers = max_workers
        self.max_orders_in_flight = max_orders_in_flight
        self.max_orders = max_orders
        self.tally = Tally()
        self.failure: str | None = None
        self._producers = producers
        self._workshop = Workshop(
            name=name,
            destinations=destinations,
            tab_seconds=tab_seconds,
            group_metadata=lambda: self._group_metadata,
            stopping=stopping,
            watchdog=watchdog
            or Watchdog(name, on_expiry=lambda message: exit_at_once(message, self.leave_group)),
        )
        self._lines = PartitionLines()
        self._settled: queue.Queue[_Settled] = queue.Queue()
        self._waiting = _Waiting()
        self._attempts: dict[tuple[PartitionKey, int], int] = {}
        self._workers_in_use = 0
        self._in_flight = 0
        self._orders_in_flight = 0
        self._leave_requested = threading.Event()
        self._left = threading.Event()
        self._closed = False
        # Read by order threads when they commit; refreshed by the main thread only, because
        # consumer_group_metadata() called from another thread can block while poll() runs.
        self._group_metadata = consumer.consumer_group_metadata()

    # ------------------------------------------------------------------ main thread

    @property
    def busy(self) -> bool:
        """Orders in flight or waiting for workers."""
        return self._in_flight > 0 or bool(self._waiting.records)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def taking_orders(self) -> bool:
        """False once the maker has started all the orders it may make (MEDICINE_MAX_ORDERS)."""
        return not self.max_orders or self.tally.made + self._orders_in_flight < self.max_orders

    def subscribe(self, topic: str) -> None:
        """Join the group for `topic`, with this maker's rebalance callbacks."""
        self.consumer.subscribe(
            [topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost
        )

    def offer(self, record: Message) -> None:
        """A polled, error-free record: start it, or keep it until workers are free."""
        topic, partition, offset = coordinates(record)
        key = (topic, partition)
        if self._lines.rereading(key) or self._lines.stale(key, offset):
            return  # the partition is read again from an earlier order (failed, or not started)
        if key in self._waiting.records:
            known = self._waiting.reread_from.get(key, offset)
            self._waiting.reread_from[key] = min(known, offset)
            return
        if self._waiting.records or not self._fits(record):
            self._waiting.records[key] = record
            self.consumer.pause([TopicPartition(topic, partition)])
            return
        self._start(record)

    def tick(self) -> None:
        """Account for settled orders, start waiting ones that now fit, read failed ones again.

        Also takes the group's current metadata (member epoch) for the commits to come.
        """
        self._group_metadata = self.consumer.consumer_group_metadata()
        self._check_registrations()
        self._take_settled()
        self._start_waiting()
        for (topic, partition), offset in self._lines.ready_to_reread():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exception:
                # Going on past an uncommitted order would lose it: leave it to the next owner.
                raise MakerFailed(
                    f"could not read {topic}[{partition}] again from {offset}: {exception}"
                ) from exception

    def settle_all(self, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Wait until every order in flight has settled (for a stop or a failure)."""
        deadline = time.monotonic() + timeout_s
        for entry in self._lines.unsettled():
            entry.settled.wait(max(0.0, deadline - time.monotonic()))
        self._take_settled()

    def on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Rebalance callback: start each new partition at its committed offset, once stable.

        librdkafka (2.16) can lose a committed offset that was momentarily unstable: when the
        broker answers UNSTABLE_OFFSET_COMMIT (the previous owner's last transaction is still
        being committed, or its maker was killed mid-commit) and its retries run out or its
        assignment changes meanwhile (any rebalance wave), it starts the partition with no offset,
        and `auto.offset.reset=earliest` read it again from its first order: every order on it
        made a second time. So the offsets are read here, until stable, and given explicitly.
        """
        if not partitions:
            return
        if self._closed:
            # Given while leaving: `consumer.close()` serves an assignment that came after the
            # last poll (a maker leaving at scale-in as another leaves too). A closing consumer
            # fetches no committed offset, so reading them would time out at every try, for
            # STABLE_OFFSET_TIMEOUT_S (measured: four of five overload demos had a maker stuck
            # here past the scale-in bound). They go on to the next owner as this maker leaves.
            log.info("%s: assigned %s while leaving; not started", self.name, _listed(partitions))
            return
        log.info("%s: assigned %s", self.name, _listed(partitions))
        keys = [(tp.topic, tp.partition) for tp in partitions]
        # Registering fences the partitions' previous holders and then sweeps (sweep.py): an
        # offset that lost its transaction's marker reads stable only after that, so it starts
        # before the offsets are read. It runs on while the first orders are made, and no order
        # commits before its partition's offset has been read again after it
        # (`_check_registrations`).
        self._group_metadata = self.consumer.consumer_group_metadata()
        self._producers.begin(keys, lambda: self._group_metadata)
        starts, unreadable = stable_starts(self.consumer, partitions)
        # Partitions left out are not read by this maker, which fails so that they move on.
        self.failure = self.failure or unreadable
        started = {(tp.topic, tp.partition): tp.offset for tp in starts}
        self._producers.drop(key for key in keys if key not in started)
        for key, offset in started.items():
            self._producers.started(key, offset)
        if starts:
            self.consumer.incremental_assign(starts)

    def on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Rebalance callback: give these partitions up at once, their orders in flight going on.

        librdkafka 2.16 acknowledges a KIP-848 revocation as soon as this returns, whatever it
        did (measured: with `incremental_unassign([])` called to keep them, the next owner had
        the partitions 150 ms later while this consumer still had them), and whatever waits here
        blocks poll() for the partitions kept. So nothing waits: the orders in flight on a
        registered partition depart, and each commits on its partition's producer if it is made
        before the next owner's registration fences that producer (which the next owner puts off
        by about half a making time, producers.py); else its commit fails, nothing of it is
        visible, and the next owner makes it. The next owner reads the partition's offset again
        after registering, and leaves to this maker what it committed (`_check_registrations`).
        Orders of a partition still registering here are handed over unmade, and its registration
        is cancelled so that it can never fence the next owner.
        """
        keys = {(p.topic, p.partition) for p in partitions}
        if partitions:
            log.info("%s: revoked %s", self.name, _listed(partitions))
        self._group_metadata = self.consumer.consumer_group_metadata()
        paused = keys & set(self._waiting.records)
        for key in paused:
            del self._waiting.records[key]
            self._waiting.reread_from.pop(key, None)
        if paused:
            # A pause outlives the assignment in librdkafka: a partition that comes back to this
            # maker later must not come back paused.
            self.consumer.resume([TopicPartition(topic, partition) for topic, partition in paused])
        in_flight = self._lines.unsettled(keys)
        departing_keys = self._producers.depart({e.key for e in in_flight})
        handed_over = 0
        for entry in in_flight:
            if entry.key in departing_keys:
                entry.departing = True
            elif entry.hand_over():
                handed_over += 1
        self._producers.drop(keys - departing_keys)
        if in_flight:
            log.info(
                "%s: %d partition(s) revoked with %d order(s) in flight; %d depart, %d handed"
                " over unmade",
                self.name,
                len(keys),
                len(in_flight),
                len(in_flight) - handed_over,
                handed_over,
            )
        self._take_settled()
        self._lines.forget(keys)  # the next owner reads them from their committed offsets

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Rebalance callback: partitions taken without a revocation (session expired, epoch
        fenced); their next owners' registrations fence this maker there. Logged, then revoked."""
        log.warning(
            "%s: lost %s (the group no longer counts this maker as their owner)",
            self.name,
            _listed(partitions),
        )
        self.on_revoke(consumer, partitions)

    def leave_group(self) -> None:
        """The watchdog's last words: hand this maker's partitions over now, not at session expiry.

        The main thread closes the consumer (closing it under a running poll is not safe); when it
        is itself stuck, the session expiry frees the partitions.
        """
        self._leave_requested.set()
        self._left.wait(LEAVE_TIMEOUT_S)

    def leave_if_asked(self) -> bool:
        """Called by the main thread between polls: close the consumer if the watchdog asked."""
        if not self._leave_requested.is_set():
            return False
        self.close()
        return True

    def close(self) -> None:
        """Leave the group (once): the partitions move to another maker at once."""
        if not self._closed:
            self._closed = True
            try:
                self.consumer.close()
            finally:
                self._producers.drop_all()
                self._left.set()

    # ------------------------------------------------------------------ internals

    def _check_registrations(self) -> None:
        """Read again the committed offset of partitions just registered: then they are ready.

        Registering fenced the partition's previous holder; an offset still where this maker
        started it means no earlier holder committed since, and none can now. An offset that
        moved forward means one did (the previous holder's departing orders, or a zombie's), on
        orders this maker is making too: committing those would make them twice, so this maker
        gives its copies up and goes on from there. An offset that went back is left to the
        next owner.
        """
        unchecked = self._producers.registered_unchecked()
        if not unchecked:
            return
        try:
            now = committed_starts(self.consumer, [each.key for each in unchecked])
        except KafkaException as exception:
            log.info("%s: registered partitions not checked yet: %s", self.name, exception)
            return
        for registration in unchecked:
            offset = now.get(registration.key)
            if offset is None:  # still being committed: next tick
                continue
            start = registration.start_offset
            if offset == start:
                registration.ready.set()
                continue
            topic, partition = registration.key
            if start is None or offset < start:
                registration.fail(
                    f"{topic}[{partition}]'s committed offset went back from {start} to {offset};"
                    " leaving it to the next owner"
                )
                self.failure = self.failure or registration.problem
                continue
            # The previous holder's departing orders (or a zombie's) committed up to `offset`
            # before the registration fenced it, and can commit nothing more: those orders are
            # made, so this maker's copies of them stop, and the partition goes on from there.
            given_up = self._lines.previous_holder_committed(registration.key, offset)
            log.info(
                "%s: %s[%d] was committed from %d up to %d by its previous holder after this maker"
                " started it; %d order(s) of it given up here, made there",
                self.name,
                topic,
                partition,
                start,
                offset,
                len(given_up),
            )
            registration.start_offset = offset
            registration.ready.set()

    def _fits(self, record: Message) -> bool:
        if self._in_flight == 0:
            return True  # an order larger than the maker runs alone, its tabs in waves
        if self.max_orders_in_flight and self._in_flight >= self.max_orders_in_flight:
            return False
        return self._workers_for(record) <= self.max_workers - self._workers_in_use

    def _workers_for(self, record: Message) -> int:
        parsed = self._parse(record)
        return min(parsed.tabs_count, self.max_workers) if isinstance(parsed, Order) else 0

    def _parse(self, record: Message) -> Order | Rejection:
        topic, partition, offset = coordinates(record)
        return parse_order(record.value(), topic, partition, offset)

    def _start(self, record: Message) -> None:
        parsed = self._parse(record)
        is_order = isinstance(parsed, Order)
        if is_order and not self.taking_orders:
            return  # not committed: the next maker takes it
        topic, partition, offset = coordinates(record)
        workers = min(parsed.tabs_count, self.max_workers) if isinstance(parsed, Order) else 0
        entry = self._lines.enter((topic, partition), offset, workers)
        self._workers_in_use += workers
        self._in_flight += 1
        self._orders_in_flight += int(is_order)
        # Taken here, on the main thread: a revocation (also on the main thread) may take the
        # partition's producer out of the maker before the order thread first runs.
        registration = self._producers.get((topic, partition))
        thread = threading.Thread(
            target=self._make,
            args=(entry, registration, record, parsed),
            name=f"order-{topic}[{partition}]@{offset}",
            daemon=True,
        )
        thread.start()

    def _make(
        self,
        entry: InFlight,
        registration: Registration | None,
        record: Message,
        parsed: Order | Rejection,
    ) -> None:
        """An order thread: one record, made, then committed on its partition's producer."""
        outcome: Outcome | None = None
        failure: MakerFailed | None = None
        try:
            if registration is None:  # only assigned partitions are read, and each has one
                raise MakerFailed(f"no producer for {entry.key[0]}[{entry.key[1]}]")
            outcome = make_in_transaction(
                self._workshop,
                lambda: registration.wait_ready(REGISTRATION_TIMEOUT_S),
                record,
                parsed,
                entry,
            )
        except MakerFailed as error:
            failure = error
        except Exception as error:  # never lose an order thread silently
            log.exception("%s: order thread failed", self.name)
            failure = MakerFailed(f"an order thread failed: {error}")
        finally:
            entry.settle(committed=outcome in (Outcome.MADE, Outcome.DEAD_LETTERED))
            self._settled.put(_Settled(entry, isinstance(parsed, Order), outcome, failure))

    def _take_settled(self) -> None:
        while True:
            try:
                settled = self._settled.get_nowait()
            except queue.Empty:
                return
            self._account(settled)

    def _account(self, settled: _Settled) -> None:
        entry = settled.entry
        self._lines.leave(entry)
        self._workers_in_use -= entry.workers
        self._in_flight -= 1
        self._orders_in_flight -= int(settled.is_order)
        where = (entry.key, entry.offset)
        if settled.failure is not None:
            self.failure = self.failure or str(settled.failure)
        elif settled.outcome is Outcome.MADE:
            self.tally.made += 1
            self._attempts.pop(where, None)
        elif settled.outcome is Outcome.DEAD_LETTERED:
            self.tally.dead_lettered += 1
            self._attempts.pop(where, None)
        elif settled.outcome is Outcome.RETRY:
            self._attempts[where] = self._attempts.get(where, 0) + 1
            if self._attempts[where] >= MAX_ATTEMPTS:
                self.failure = self.failure or (
                    f"giving the order up to the next job after {MAX_ATTEMPTS} attempts"
                )

    def _start_waiting(self) -> None:
        """Start waiting records in polled order while they fit; resume their partitions."""
        while self._waiting.records:
            key, record = next(iter(self._waiting.records.items()))
            # A record that waited while its partition was sought back is dropped too (measured
            # at 60 patients: started after the seek, it committed ahead of the failed order).
            dropped = self._lines.rereading(key) or self._lines.stale(key, coordinates(record)[2])
            if not dropped and not self._fits(record):
                return
            del self._waiting.records[key]
            topic, partition = key
            reread_from = self._waiting.reread_from.pop(key, None)
            if not dropped:
                self._start(record)
                if reread_from is not None:
                    self.consumer.seek(TopicPartition(topic, partition, reread_from))
                    self._lines.rewind(key, reread_from)
            self.consumer.resume([TopicPartition(topic, partition)])


def _listed(partitions: list[TopicPartition]) -> str:
    """`tabs.orders[0,3,7]`: partitions for a log line, by topic."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(
        f"{topic}[{','.join(map(str, sorted(numbers)))}]" for topic, numbers in by_topic.items()
    )
