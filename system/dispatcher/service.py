"""`medpubsub dispatcher`: one permanent consumer of the orders that starts a maker per order.

The other design of the system: instead of KEDA watching the lag and starting makers that then
compete for partitions, one consumer (group DISPATCHER_GROUP_ID) reads every order as it comes
and starts a maker for that order alone (launchers.py: a process here, a Job on Kubernetes),
which makes it exactly once (medpubsub.medicine.one_order). No partition is ever waited for,
and no maker joins a group.

What the dispatcher guarantees:
- An order's offset is committed only once its maker exists (the process started, the Job
  created), in the order polled. A dispatcher killed before that commit reads the order again
  and starts its maker again; the maker's transactional id and marker (one_order.py) keep a
  second maker from making it twice.
- Bad orders go to the dead-letter topic in the same transaction that commits their offset
  (the dispatcher's own transactional producer), so each is dead-lettered exactly once and no
  maker is started for it.
- Makers it started are watched; one that failed before its order was made (crashed, killed,
  Kafka failure) is started again after a backoff that doubles, DISPATCHER_MAX_ATTEMPTS times
  at most, after which the order is dead-lettered with the reason. The makers being watched are
  written down (the state file / the Jobs themselves) before their offsets are committed, so a
  dispatcher started again watches the makers of its previous life.
- At most DISPATCHER_MAX_MAKERS makers run at once; at the bound it stops taking orders.

Exit status: 0 when stopped (SIGTERM / SIGINT), 1 when Kafka failed in a way it cannot recover
from (fenced, fatal), 2 for a configuration error.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from medpubsub.dispatcher.launchers import (
    Ended,
    JobLauncher,
    Launcher,
    LaunchFailed,
    Maker,
    ProcessLauncher,
)
from medpubsub.dispatcher.settings import DispatcherSettings
from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.one_order import DispatchedOrder
from medpubsub.medicine.producers import (
    TRANSACTIONAL_PREFIX,
    ProducerUnavailable,
    registered_producer,
    transactional_factory,
)
from medpubsub.medicine.service import maker_name
from medpubsub.medicine.sweep import Sweep
from medpubsub.medicine.transaction import coordinates, kafka_error, remaining, retrying
from medpubsub.medicine.watchdog import Watchdog, exit_at_once
from medpubsub.messages import DeadLetter, Order, parse_order
from medpubsub.settings import KafkaSettings, load
from medpubsub.shutdown import StopRequest, start_service

log = logging.getLogger("medpubsub.dispatcher")

POLL_INTERVAL_S = 0.05
# Offsets and dead letters are committed at most this often: makers start at once anyway, the
# commit only has to come before a restart could matter.
COMMIT_INTERVAL_S = 0.1
# A commit, retried while librdkafka says a retry may succeed, has this long in all.
COMMIT_TIMEOUT_S = 5.0
# How long past that bound a commit may block before the watchdog ends the dispatcher: librdkafka
# can block in send_offsets_to_transaction for ever when the coordinator went away (a broker
# restart; confluentinc/librdkafka#5456), and a dispatcher stuck there dispatches nothing. Its
# next life (the Deployment's, the platform's restart) reads the uncommitted orders again; its
# last words leave the group, so that the next life gets the partitions at once, not after the
# session timeout. Measured with the broker restarted under load: the orders behind the stuck
# commit waited 12 s for the watchdog and 6 s more for the session, p95 30 s.
WATCHDOG_GRACE_S = 2.0
# How long a dispatcher that stops lets its local makers finish their orders.
CLOSE_GRACE_S = 6.0
MAX_BACKOFF_S = 10.0


class DispatcherFailed(Exception):
    """Kafka failed in a way this process cannot recover from: exit 1 and be started again."""


@dataclass
class _Pending:
    """What the next transaction commits: offsets past the orders whose makers exist, and the
    dead letters."""

    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.offsets or self.letters)


@dataclass
class _Retry:
    maker: Maker
    due: float  # monotonic


class Dispatcher:
    """The dispatcher's state: the makers it watches, retries due, what is left to commit."""

    def __init__(
        self,
        name: str,
        *,
        consumer: Consumer,
        producer: Producer,
        launcher: Launcher,
        settings: DispatcherSettings,
        dlq_topic: str,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.name = name
        self.watchdog = watchdog or Watchdog(
            name, on_expiry=lambda message: exit_at_once(message, consumer.close)
        )
        self.consumer = consumer
        self.producer = producer
        self.launcher = launcher
        self.settings = settings
        self.dlq_topic = dlq_topic
        self.running: dict[str, Maker] = {}  # by order id
        self.retries: dict[str, _Retry] = {}  # by order id
        self.created = 0
        self.made = 0
        self._pending = _Pending()
        self._last_commit = time.monotonic()

    # -- makers ---------------------------------------------------------------------------------

    @property
    def watched(self) -> int:
        return len(self.running) + len(self.retries)

    def recover(self) -> None:
        """Watch the makers a previous life started and did not see finish."""
        for maker in self.launcher.recover():
            self.running[maker.order_id] = maker
        if self.running:
            log.info("%s: watching %d maker(s) of a previous life", self.name, len(self.running))
            self._record()

    def dispatch(self, record: Message) -> None:
        """A polled record: dead-letter it, or start its maker; then it may be committed."""
        topic, partition, offset = coordinates(record)
        parsed = parse_order(record.value(), topic, partition, offset)
        if isinstance(parsed, Order):
            if parsed.order_id not in self.running and parsed.order_id not in self.retries:
                value = record.value() or b""
                key = record.key()
                order = DispatchedOrder(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    value=value.decode("utf-8"),
                    key=None if key is None else key.decode("utf-8", errors="replace"),
                )
                self._start(parsed.order_id, order, attempt=1)
        else:
            self._pending.letters.append(
                DeadLetter.of_record(
                    record.value(), topic, partition, offset, reason=parsed.reason, maker=self.name
                )
            )
            log.warning("%s: dead-lettered %s[%d]@%d: %s", self.name, topic, partition, offset,
                        parsed.reason)  # fmt: skip
        self._pending.offsets[(topic, partition)] = offset + 1

    def watch(self) -> None:
        """Account for ended makers and start the retries that are due."""
        ended = self.launcher.ended(list(self.running.values()))
        for maker in list(self.running.values()):
            how = ended.get(maker.name)
            if how is not None:
                self._ended(maker, how)
        now = time.monotonic()
        for order_id, retry in list(self.retries.items()):
            if retry.due <= now and len(self.running) < self.settings.max_makers:
                del self.retries[order_id]
                self._start_or_retry(retry.maker, retry.maker.attempt + 1)

    def _ended(self, maker: Maker, how: Ended) -> None:
        del self.running[maker.order_id]
        self.launcher.forget(maker)
        if how is Ended.MADE:
            self.made += 1
            self._record()
            return
        if how is Ended.GONE:
            # A maker of a previous life ended unseen: another one finds out whether it made
            # the order (it exits at once when it did); this is not a failed attempt.
            self._start_or_retry(maker, maker.attempt)
            return
        if how is Ended.REJECTED or maker.attempt >= self.settings.max_attempts:
            reason = (
                "the maker refused the order"
                if how is Ended.REJECTED
                else f"its maker failed {maker.attempt} times"
            )
            self._give_up(maker, reason)
            return
        backoff = min(MAX_BACKOFF_S, self.settings.backoff_seconds * 2 ** (maker.attempt - 1))
        log.warning("%s: maker %s failed; starting it again in %.1f s", self.name, maker.name,
                    backoff)  # fmt: skip
        self.retries[maker.order_id] = _Retry(maker, time.monotonic() + backoff)
        self._record()

    def _give_up(self, maker: Maker, reason: str) -> None:
        order = maker.order
        log.error("%s: giving order %s up: %s", self.name, maker.order_id, reason)
        self._pending.letters.append(
            DeadLetter(
                reason=reason,
                topic=order.topic,
                partition=order.partition,
                offset=order.offset,
                payload=order.value,
                failed_at_ns=time.time_ns(),
                maker=self.name,
            )
        )
        self._record()

    def _start(self, order_id: str, order: DispatchedOrder, attempt: int) -> None:
        maker = self.launcher.launch(order_id, order, attempt)
        self.running[order_id] = maker
        self.created += 1

    def _start_or_retry(self, previous: Maker, attempt: int) -> None:
        try:
            self._start(previous.order_id, previous.order, attempt)
        except LaunchFailed as failure:  # the order's offset is committed: keep trying
            log.warning("%s: %s; trying again", self.name, failure)
            again = Maker(previous.name, previous.order_id, previous.order, attempt - 1, 0)
            self.retries[previous.order_id] = _Retry(
                again, time.monotonic() + self.settings.backoff_seconds
            )

    def _record(self) -> None:
        makers = [*self.running.values(), *(retry.maker for retry in self.retries.values())]
        self.launcher.record(makers, self.created)

    # -- commits --------------------------------------------------------------------------------

    def commit_if_due(self) -> None:
        if self._pending and time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
            self.commit()

    def commit(self) -> None:
        """Commit the offsets of the orders whose makers exist, with the dead letters.

        A transaction that fails is aborted and its content kept for the next one: the makers
        exist whatever Kafka says, and re-sending the same offsets and letters is harmless.
        """
        if not self._pending:
            return
        self._record()  # the makers are written down before their orders are committed
        pending = self._pending
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(pending.offsets.items())]
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        bound = COMMIT_TIMEOUT_S + WATCHDOG_GRACE_S
        producer = self.producer
        try:
            with self.watchdog.guard("committing the dispatcher's transaction", bound):
                producer.begin_transaction()
                for letter in pending.letters:
                    producer.produce(self.dlq_topic, letter.to_bytes(), key=letter.topic)
                group = self.consumer.consumer_group_metadata()
                # A timed-out call is resumed by calling it again (librdkafka says so), not by
                # aborting, which would conflict with the call still in progress.
                retrying(
                    lambda: producer.send_offsets_to_transaction(
                        offsets, group, remaining(deadline)
                    ),
                    deadline,
                )
                retrying(lambda: producer.commit_transaction(remaining(deadline)), deadline)
        except KafkaException as exception:
            self._failed_commit(exception)
            return
        self._pending = _Pending()
        self._last_commit = time.monotonic()

    def _failed_commit(self, exception: KafkaException) -> None:
        error = kafka_error(exception)
        if error is not None and error.fatal():
            raise DispatcherFailed(f"fatal Kafka error: {error}") from exception
        log.warning("%s: commit failed, trying again: %s", self.name, exception)
        self._last_commit = time.monotonic()
        try:
            with self.watchdog.guard(
                "aborting the dispatcher's transaction", COMMIT_TIMEOUT_S + WATCHDOG_GRACE_S
            ):
                self.producer.abort_transaction(COMMIT_TIMEOUT_S)
        except KafkaException as abort_error:
            raise DispatcherFailed(f"could not abort the transaction: {abort_error}") from None

    def on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit what was dispatched from these partitions while they are still ours."""
        try:
            self.commit()
        except DispatcherFailed as failure:
            log.error("%s: %s", self.name, failure)


def _launcher(settings: DispatcherSettings, kafka: KafkaSettings) -> Launcher:
    if settings.launcher == "job":
        return JobLauncher(settings.namespace, settings.job_template)
    log_dir = settings.state_file.parent / "makers" if settings.state_file is not None else None
    return ProcessLauncher(_maker_environment(os.environ), settings.state_file, log_dir)


def _maker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A local maker gets the dispatcher's environment without the dispatcher's own settings."""
    return {name: value for name, value in environ.items() if not name.startswith("DISPATCHER_")}


def run() -> int:
    """Run the dispatcher until SIGTERM (see the module docstring for the exit status)."""
    kafka = load(KafkaSettings)
    settings = load(DispatcherSettings)
    stop = start_service()
    name = f"dispatcher-{maker_name(os.environ)}"
    launcher = _launcher(settings, kafka)
    # The transactional id comes from the group, not from this process: a dispatcher started
    # after a crash fences its previous life and aborts a transaction it left open at once, instead
    # of the group's committed offsets staying unstable until the broker's transaction timeout
    # (read_committed offset fetches wait for them). One dispatcher per group (a Deployment of one
    # replica, strategy Recreate) is what this assumes.
    transactional_id = f"{TRANSACTIONAL_PREFIX}dispatcher-{settings.group_id}"
    try:
        producer = registered_producer(
            transactional_factory(kafka, name),
            transactional_id,
            stop.is_set,
            # Its dead letters only, keyed by the orders topic: its offsets are read without
            # waiting for stable ones (below).
            lambda registered: Sweep(keyed=((kafka.dlq_topic, kafka.orders_topic),))(
                registered, stopping=stop.is_set
            ),
        )
    except ProducerUnavailable as failure:
        log.error("%s: %s", name, failure)
        return 1
    if producer is None:
        return 0
    # A KIP-848 member like the makers. (A static classic member, which takes a dead one's
    # partitions at once, measured slower here: its joins wait for the classic rebalance.)
    consumer = Consumer(
        consumer_config(kafka, client_id=name, group_id=settings.group_id)
        # Its committed offsets are read without waiting for them to be stable (no
        # require_stable). A broker restarted while one of its transactions was being
        # committed can skip that transaction's marker to __consumer_offsets (it takes the
        # partition's unknown leader for a deleted topic, KAFKA-5202): the offsets stay pending
        # for ever and a read_committed fetch waits for ever. Measured here: a dispatcher
        # started after a broker restart polled nothing for minutes. Reading the last stable
        # offset instead may dispatch a few orders again, which is harmless: their makers
        # exist or find them made (one_order.py). Orders are not written in transactions,
        # so their records read the same either way.
        | {"isolation.level": "read_uncommitted"}
    )
    dispatcher = Dispatcher(
        name,
        consumer=consumer,
        producer=producer,
        launcher=launcher,
        settings=settings,
        dlq_topic=kafka.dlq_topic,
    )
    dispatcher.recover()
    consumer.subscribe([kafka.orders_topic], on_revoke=dispatcher.on_revoke)
    print(
        f"dispatcher {name}: dispatching orders from {kafka.orders_topic} as"
        f" {settings.group_id} at {kafka.kafka_bootstrap} ({settings.launcher} makers)",
        flush=True,
    )
    status = 0
    try:
        _serve(dispatcher, settings, stop)
        dispatcher.commit()
    except DispatcherFailed as failure:
        log.error("%s: %s", name, failure)
        status = 1
    finally:
        consumer.close()
        launcher.close(CLOSE_GRACE_S)
    print(
        f"dispatcher {name}: {'stopped' if status == 0 else 'failed'} after starting"
        f" {dispatcher.created} makers ({dispatcher.made} made their order)",
        flush=True,
    )
    return status


def _serve(dispatcher: Dispatcher, settings: DispatcherSettings, stop: StopRequest) -> None:
    while not stop.is_set():
        dispatcher.watch()
        dispatcher.commit_if_due()
        paused = settings.pause_file is not None and settings.pause_file.exists()
        if paused or len(dispatcher.running) >= settings.max_makers:
            # Not polling leaves the orders in Kafka (the lag shows them); KIP-848 heartbeats
            # go on from librdkafka's thread, and a maker ends within seconds.
            stop.wait(POLL_INTERVAL_S)
            continue
        record = dispatcher.consumer.poll(POLL_INTERVAL_S)
        if record is None or stop.is_set():  # a record taken while stopping stays uncommitted
            continue
        error = record.error()
        if error is not None:
            if error.fatal():
                raise DispatcherFailed(f"fatal consumer error: {error}")
            log.warning("%s: consumer: %s", dispatcher.name, error)
            continue
        _dispatch_until_started(dispatcher, record, stop)


def _dispatch_until_started(dispatcher: Dispatcher, record: Message, stop: StopRequest) -> None:
    """A maker that cannot be started now (the API or the host refused) is tried again: the
    orders behind it wait, since offsets commit in order."""
    backoff = dispatcher.settings.backoff_seconds
    while True:
        try:
            dispatcher.dispatch(record)
            return
        except LaunchFailed as failure:
            log.warning("%s: %s; trying again in %.1f s", dispatcher.name, failure, backoff)
            if stop.wait(backoff):
                raise DispatcherFailed("stopped before the maker could be started") from None
            backoff = min(MAX_BACKOFF_S, backoff * 2)
