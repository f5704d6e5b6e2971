"""The observer: watches every order, tab and dead letter the system publishes, as a client would.

It reads the three topics `read_committed` from their beginning, so it counts only what a real
consumer of `tabs.deliveries` could see: a tab inside an aborted (or still open) transaction is
not delivered, and a tab made twice by two committed transactions is a duplicate. An order's
latency ends when its last tab became *visible* (the observer's clock when it consumed the tab),
not when the maker says it made it; the made-latency is kept beside it to tell the two apart.

Two background threads do the work: one consumes Kafka, one takes a timeline sample every second
(patients, jobs and lag from the platform, orders/s and tabs/s from the consumer). Everything
they share sits behind one lock; `summary()` computes the figures of docs/design.md §2.5 from a
consistent view of the tables.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, OffsetSpec
from pydantic import BaseModel, ConfigDict, ValidationError

from medpubsub.kafka_clients import common_config, reader_config
from medpubsub.messages import DeadLetter, Order, Tab, parse_order
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.waiting import WaitTimeout, wait_until

NS_PER_S = 1_000_000_000
T = TypeVar("T")
_Partition = tuple[str, int]

# Topics are looked up again this often, so that topics created after the observer started (or
# partitions added) are read too; more often while one of the three is still missing.
_METADATA_REFRESH_S = 5.0
_MISSING_TOPIC_REFRESH_S = 1.0
_POLL_TIMEOUT_S = 0.1
_POLL_BATCH = 500
_DRAIN_REPORT_EVERY_S = 5.0
_LOST_IDS_SHOWN = 20


@dataclass(frozen=True)
class PlatformSample:
    """What the platform reports once a second: running patients, unfinished makers, order lag."""

    patients: int
    jobs: int
    lag: int


@dataclass(frozen=True)
class Mark:
    """A point in time (wall clock, ns): summaries `since` it cover orders placed from then on."""

    ns: int


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatencyStats(_Frozen):
    """Nearest-rank percentiles of a set of latencies, in seconds."""

    p50: float
    p95: float
    p99: float
    max: float


class TimelineSample(_Frozen):
    """One second of the run; platform fields are None without a sampler or when it failed."""

    t_ns: int
    patients: int | None
    jobs: int | None
    lag: int | None
    orders_per_s: float
    tabs_per_s: float


class Throughput(_Frozen):
    """Observed rates averaged over the timeline samples of the summary's window."""

    orders_per_s: float
    tabs_per_s: float


class OrderRow(_Frozen):
    """One order, for plots and for finding out what happened to it."""

    order_id: str
    ordered_at_ns: int
    tabs_count: int
    tabs_received: int
    duplicates: int
    makers: int
    latency_s: float | None
    made_latency_s: float | None


class Summary(_Frozen):
    """The figures of docs/design.md §2.5 for the orders placed since a mark, plus a few extras.

    `latency_s` and `made_latency_s` are None when no order of the window is complete, `max_jobs`
    when no sample carried a job count. The extras (`since_ns`, `observed_at_ns`, `final`,
    `incomplete_orders`, `lost_order_ids`, `orphan_tabs`, `invalid_orders`, `invalid_tabs`,
    `makers`, `throughput`, `per_order`) help to explain a failure without re-running the test.
    """

    orders: int
    tabs: int
    complete_orders: int
    incomplete_orders: int
    lost_orders: int
    duplicate_tabs: int
    dead_letters: int
    latency_s: LatencyStats | None
    made_latency_s: LatencyStats | None
    max_jobs: int | None
    timeline: list[TimelineSample]
    throughput: Throughput
    per_order: list[OrderRow]
    lost_order_ids: list[str]
    makers: int
    orphan_tabs: int
    invalid_orders: int
    invalid_tabs: int
    since_ns: int | None
    observed_at_ns: int
    final: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what `report.json` holds)."""
        return self.model_dump(mode="json")


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p`-th percentile: the smallest value with at least p % of values ≤ it.

    Nearest-rank always returns a value that was measured (no interpolation between two orders),
    which is what an SLO like "95 % of orders within 5 s" means. None for no values.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not values:
        return None
    ordered = sorted(values)
    # p * n first: exact for whole percentages; the epsilon keeps 0.07 * 100 from ranking 8.
    rank = max(1, math.ceil(p * len(ordered) / 100 - 1e-9))
    return ordered[rank - 1]


def latency_stats(values: Sequence[float]) -> LatencyStats | None:
    """p50/p95/p99/max of `values` (nearest rank); None when there are none."""
    if not values:
        return None
    p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
    if p50 is None or p95 is None or p99 is None:  # pragma: no cover - values is not empty
        return None
    return LatencyStats(p50=p50, p95=p95, p99=p99, max=max(values))


@dataclass
class _OrderState:
    """What is known of one order id; tabs may be known before the order itself is seen."""

    ordered_at_ns: int | None = None
    tabs_count: int | None = None
    received_ns: dict[int, int] = field(default_factory=dict)  # index -> first receipt
    made_at_ns: dict[int, int] = field(default_factory=dict)  # index -> first made_at
    tab_ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    makers: set[str] = field(default_factory=set)

    @property
    def seen(self) -> bool:
        return self.ordered_at_ns is not None

    @property
    def complete(self) -> bool:
        count = self.tabs_count
        return count is not None and all(index in self.received_ns for index in range(count))

    def latency_s(self) -> float | None:
        """From the order to the moment its last tab became visible; None while incomplete."""
        if not self.complete or self.ordered_at_ns is None or self.tabs_count is None:
            return None
        done_ns = max(self.received_ns[index] for index in range(self.tabs_count))
        return (done_ns - self.ordered_at_ns) / NS_PER_S

    def made_latency_s(self) -> float | None:
        """From the order to the last tab's `made_at_ns` (the maker's clock, no Kafka in it)."""
        if not self.complete or self.ordered_at_ns is None or self.tabs_count is None:
            return None
        made_ns = max(self.made_at_ns[index] for index in range(self.tabs_count))
        return (made_ns - self.ordered_at_ns) / NS_PER_S


@dataclass(frozen=True)
class _DrainState:
    """What `wait_drained` looks at; its repr is what a timeout reports as seen last."""

    behind: int
    incomplete: int
    missing_tabs: int
    oldest_incomplete_s: float | None

    @property
    def drained(self) -> bool:
        return self.behind == 0 and self.incomplete == 0

    def __repr__(self) -> str:
        oldest = (
            "" if self.oldest_incomplete_s is None else f", oldest {self.oldest_incomplete_s:.1f} s"
        )
        reading = "read up to date" if self.behind == 0 else f"{self.behind} records left to read"
        return (
            f"{self.incomplete} incomplete orders ({self.missing_tabs} tabs missing{oldest}), "
            f"{reading}"
        )


class Observer:
    """Watches orders, tabs and dead letters; answers `summary()` and `wait_drained()`.

    `sampler` is called once a second for the platform's figures (it may raise: that second's
    sample then has no platform fields). An incomplete order older than `lost_after_s` counts as
    lost even before the run ends.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        sampler: Callable[[], PlatformSample] | None = None,
        lost_after_s: float = 60.0,
        sample_interval_s: float = 1.0,
    ) -> None:
        self._kafka = kafka
        self._sampler = sampler
        self._lost_after_ns = int(lost_after_s * NS_PER_S)
        self._sample_interval_s = sample_interval_s
        self._topics = (kafka.orders_topic, kafka.deliveries_topic, kafka.dlq_topic)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumer: Consumer | None = None
        self._admin: AdminClient | None = None
        self._admin_client_id = ""
        self._failure: BaseException | None = None
        # The tables, all guarded by _lock.
        self._orders: dict[str, _OrderState] = {}
        self._dead_letters_ns: list[int] = []
        self._timeline: list[TimelineSample] = []
        self._invalid_orders = 0
        self._invalid_tabs = 0
        self._orders_in_tick = 0
        self._tabs_in_tick = 0
        # Per partition, the offset up to which everything has been read (a record's offset + 1,
        # or the end offset a partition-EOF event reports, which also covers transaction markers).
        self._read_to: dict[_Partition, int] = {}
        self._assigned: set[_Partition] = set()
        # Owned by the consumer thread only.
        self._next_refresh = 0.0
        self._last_error = ""
        # Owned by the sampler thread only.
        self._last_sampler_error = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self, connect_timeout_s: float = 30.0) -> Observer:
        """Connect, assign every partition of the three topics from the beginning, start threads.

        Raises `WaitTimeout` when Kafka cannot be reached within `connect_timeout_s`.
        """
        if self._consumer is not None:  # a second start would read everything twice
            raise RuntimeError("an observer starts once; create a new one to watch again")
        client_id = f"medpubsub-observer-{uuid.uuid4().hex[:8]}"
        config = quiet(reader_config(self._kafka, client_id))
        # Partition EOF events carry the offset where a partition's readable records end.
        config["enable.partition.eof"] = True
        consumer = Consumer(config)
        self._admin_client_id = client_id
        self._admin = self._new_admin()
        try:
            wait_until(
                lambda: consumer.list_topics(timeout=2.0),
                lambda metadata: True,
                timeout_s=connect_timeout_s,
                describe=f"Kafka metadata from {self._kafka.kafka_bootstrap}",
            )
            self._consumer = consumer
            self._refresh_assignment()
        except BaseException:
            consumer.close()
            self._admin = None
            raise
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._consume_loop, name="observer-consume", daemon=True),
            threading.Thread(target=self._sample_loop, name="observer-sample", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop both threads and close the consumer; safe to call twice."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []
        # librdkafka handles close when released; a kept one would log the broker's shutdown.
        self._admin = None

    def __enter__(self) -> Observer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- questions

    def mark(self) -> Mark:
        """Now, as a point that `summary(since=...)` can start from."""
        return Mark(time.time_ns())

    def summary(self, since: Mark | None = None, final: bool = False) -> Summary:
        """The figures for orders placed at or after `since` (all orders without it).

        With `final=True` every incomplete order counts as lost: the run is over and nothing more
        will come.
        """
        self._raise_if_failed()
        now = time.time_ns()
        since_ns = since.ns if since is not None else None
        with self._lock:
            states = [
                (order_id, state)
                for order_id, state in self._orders.items()
                if state.ordered_at_ns is not None
                and (since_ns is None or state.ordered_at_ns >= since_ns)
            ]
            rows = [_row(order_id, state) for order_id, state in states]
            makers = set().union(*(state.makers for _, state in states))
            orphan_tabs = sum(len(s.received_ns) for s in self._orders.values() if not s.seen)
            dead_letters = sum(
                1 for ns in self._dead_letters_ns if since_ns is None or ns >= since_ns
            )
            timeline = [s for s in self._timeline if since_ns is None or s.t_ns >= since_ns]
            invalid_orders, invalid_tabs = self._invalid_orders, self._invalid_tabs
        return summarize(
            rows,
            timeline,
            dead_letters=dead_letters,
            final=final,
            lost_after_s=self._lost_after_ns / NS_PER_S,
            observed_at_ns=now,
            since_ns=since_ns,
            makers=len(makers),
            orphan_tabs=orphan_tabs,
            invalid_orders=invalid_orders,
            invalid_tabs=invalid_tabs,
        )

    def wait_caught_up(self, timeout_s: float) -> None:
        """Wait until the observer has read everything committed before this call.

        The end offsets are asked for once (read_committed: the last stable offsets), so a
        steady stream of new records does not keep the wait from ending.
        """
        end_offsets = _Once(self._end_offsets)
        wait_until(
            lambda: self._records_behind(end_offsets.get()),
            lambda behind: behind == 0,
            timeout_s=timeout_s,
            describe=f"the observer to read everything committed on {', '.join(self._topics)}",
        )

    def wait_for_orders(self, count: int, timeout_s: float, since: Mark | None = None) -> Summary:
        """Wait until at least `count` orders (placed since `since`) have been seen."""
        wait_until(
            lambda: self._count_seen(since),
            lambda seen: seen >= count,
            timeout_s=timeout_s,
            describe=f"{count} orders on {self._kafka.orders_topic}",
        )
        return self.summary(since)

    def wait_drained(self, timeout_s: float, since: Mark | None = None) -> Summary:
        """Wait until every order seen (since `since`) is complete; return the final summary.

        The observer must also have read everything committed when the wait began, so an order
        published just before the call is not missed. On timeout the summary is returned anyway
        (its incomplete orders count as lost): the SLO check, not this wait, decides the verdict.
        """
        end_offsets = _Once(self._end_offsets)
        last_report = [time.monotonic()]

        def observe() -> _DrainState:
            state = self._drain_state(since, end_offsets.get())
            if time.monotonic() - last_report[0] >= _DRAIN_REPORT_EVERY_S:
                last_report[0] = time.monotonic()
                progress.say(f"draining: {state!r}")
            return state

        try:
            wait_until(
                observe,
                lambda state: state.drained,
                timeout_s=timeout_s,
                describe="every observed order to be complete",
            )
        except WaitTimeout as timeout:
            progress.say(f"not drained: {timeout}")
        return self.summary(since, final=True)

    # ---------------------------------------------------------------- internals: questions

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise RuntimeError(
                f"the observer stopped reading Kafka: {self._failure!r}"
            ) from self._failure

    def _end_offsets(self) -> dict[_Partition, int]:
        """The last stable offset of every assigned partition, asked of the broker now."""
        with self._lock:
            partitions = sorted(self._assigned)
        if not partitions or self._admin is None:
            return {}
        latest = OffsetSpec.latest()
        futures = self._admin.list_offsets(
            {TopicPartition(topic, partition): latest for topic, partition in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=10.0,
        )
        try:
            return {
                (tp.topic, tp.partition): future.result().offset for tp, future in futures.items()
            }
        except KafkaException:
            # After a broker restart an admin client can keep the old leader epochs and get
            # FENCED_LEADER_EPOCH for good (seen for minutes): the next try gets a fresh client.
            self._admin = self._new_admin()
            raise

    def _new_admin(self) -> AdminClient:
        return AdminClient(quiet(common_config(self._kafka, self._admin_client_id)))

    def _records_behind(self, end_offsets: dict[_Partition, int]) -> int:
        self._raise_if_failed()
        with self._lock:
            return sum(
                max(0, end - self._read_to.get(partition, 0))
                for partition, end in end_offsets.items()
            )

    def _count_seen(self, since: Mark | None) -> int:
        self._raise_if_failed()
        since_ns = since.ns if since is not None else 0
        with self._lock:
            return sum(
                1
                for state in self._orders.values()
                if state.ordered_at_ns is not None and state.ordered_at_ns >= since_ns
            )

    def _drain_state(self, since: Mark | None, end_offsets: dict[_Partition, int]) -> _DrainState:
        behind = self._records_behind(end_offsets)
        since_ns = since.ns if since is not None else 0
        now = time.time_ns()
        with self._lock:
            incomplete = [
                state
                for state in self._orders.values()
                if state.ordered_at_ns is not None
                and state.ordered_at_ns >= since_ns
                and not state.complete
            ]
            missing = sum((s.tabs_count or 0) - len(s.received_ns) for s in incomplete)
            oldest = min(
                (s.ordered_at_ns for s in incomplete if s.ordered_at_ns is not None), default=None
            )
        return _DrainState(
            behind=behind,
            incomplete=len(incomplete),
            missing_tabs=max(missing, 0),
            oldest_incomplete_s=None if oldest is None else (now - oldest) / NS_PER_S,
        )

    # ---------------------------------------------------------------- internals: consuming

    def _consume_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stopping.is_set():
                if time.monotonic() >= self._next_refresh:
                    self._refresh_assignment_or_retry()
                for message in consumer.consume(_POLL_BATCH, _POLL_TIMEOUT_S):
                    self._handle(message)
        except BaseException as error:  # kept and raised by the next question asked
            self._failure = error
            progress.say(f"observer: stopped reading Kafka: {error!r}")
        finally:
            consumer.close()

    def _refresh_assignment_or_retry(self) -> None:
        """A metadata refresh that fails (the broker is down: chaos) is tried again next round."""
        try:
            self._refresh_assignment()
        except KafkaException as error:
            if str(error) != self._last_error:
                progress.say(f"observer: cannot refresh the topics' partitions yet: {error}")
                self._last_error = str(error)

    def _refresh_assignment(self) -> None:
        """Assign, from the beginning, every partition of the topics not assigned yet."""
        consumer = self._consumer
        assert consumer is not None
        metadata = consumer.list_topics(timeout=5.0)
        new: list[TopicPartition] = []
        missing = False
        for name in self._topics:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                missing = True
                continue
            with self._lock:
                known = set(self._assigned)
            for partition in topic.partitions:
                if (name, partition) not in known:
                    new.append(TopicPartition(name, partition, OFFSET_BEGINNING))
        if new:
            consumer.incremental_assign(new)
            with self._lock:
                self._assigned.update((tp.topic, tp.partition) for tp in new)
        refresh_s = _MISSING_TOPIC_REFRESH_S if missing else _METADATA_REFRESH_S
        self._next_refresh = time.monotonic() + refresh_s

    def _handle(self, message: KafkaMessage) -> None:
        topic, partition = message.topic(), message.partition()
        error = message.error()
        if error is not None:
            self._handle_error(error, message)
            return
        offset = message.offset()
        if topic is None or partition is None or offset is None:  # only error events lack them
            return
        self._advance((topic, partition), offset + 1)
        now = time.time_ns()
        if topic == self._kafka.orders_topic:
            parsed = parse_order(message.value(), topic, partition, offset)
            self._record_order(parsed if isinstance(parsed, Order) else None)
        elif topic == self._kafka.deliveries_topic:
            self._record_tab(message.value(), now)
        elif topic == self._kafka.dlq_topic:
            self._record_dead_letter(message, now)

    def _advance(self, partition: _Partition, read_to: int) -> None:
        with self._lock:
            if read_to > self._read_to.get(partition, 0):
                self._read_to[partition] = read_to

    def _handle_error(self, error: KafkaError, message: KafkaMessage) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if error.code() == KafkaError._PARTITION_EOF:
            if topic is not None and partition is not None and offset is not None:
                self._advance((topic, partition), offset)
            return
        if error.fatal():
            raise KafkaException(error)
        # Transient (a broker restarting under chaos): librdkafka retries; say it once.
        if error.str() != self._last_error:
            self._last_error = error.str()
            progress.say(f"observer: Kafka reports {error.str()} (retrying)")

    def _record_order(self, order: Order | None) -> None:
        with self._lock:
            self._orders_in_tick += 1
            if order is None:  # its dead letter, if any, arrives on the DLQ
                self._invalid_orders += 1
                return
            state = self._orders.setdefault(order.order_id, _OrderState())
            if state.ordered_at_ns is None:
                state.ordered_at_ns = order.ordered_at_ns
                state.tabs_count = order.tabs_count

    def _record_tab(self, value: bytes | None, now_ns: int) -> None:
        try:
            tab = Tab.model_validate_json(value or b"")
        except ValidationError:
            with self._lock:
                self._invalid_tabs += 1
            return
        with self._lock:
            self._tabs_in_tick += 1
            state = self._orders.setdefault(tab.order_id, _OrderState())
            state.makers.add(tab.maker)  # a maker that made a duplicate was involved too
            if tab.tab_id in state.tab_ids:
                state.duplicates += 1
                return
            state.tab_ids.add(tab.tab_id)
            state.received_ns.setdefault(tab.index, now_ns)
            state.made_at_ns.setdefault(tab.index, tab.made_at_ns)

    def _record_dead_letter(self, message: KafkaMessage, now_ns: int) -> None:
        """Dead letters are dated by when they failed (so catching up on old ones does not date
        them now); by the record's timestamp, or by receipt, when that cannot be read."""
        try:
            failed_ns = DeadLetter.model_validate_json(message.value() or b"").failed_at_ns
        except ValidationError:
            timestamp_type, timestamp_ms = message.timestamp()
            failed_ns = (
                now_ns if timestamp_type == TIMESTAMP_NOT_AVAILABLE else timestamp_ms * 1_000_000
            )
        with self._lock:
            self._dead_letters_ns.append(failed_ns)

    # ---------------------------------------------------------------- internals: sampling

    def _sample_loop(self) -> None:
        next_tick = time.monotonic() + self._sample_interval_s
        last_ns = time.time_ns()
        while not self._stopping.wait(max(0.0, next_tick - time.monotonic())):
            next_tick = max(next_tick + self._sample_interval_s, time.monotonic())
            platform = self._sample_platform()
            now = time.time_ns()
            elapsed_s = max((now - last_ns) / NS_PER_S, 1e-9)
            last_ns = now
            with self._lock:
                orders, tabs = self._orders_in_tick, self._tabs_in_tick
                self._orders_in_tick = self._tabs_in_tick = 0
                self._timeline.append(
                    TimelineSample(
                        t_ns=now,
                        patients=None if platform is None else platform.patients,
                        jobs=None if platform is None else platform.jobs,
                        lag=None if platform is None else platform.lag,
                        orders_per_s=orders / elapsed_s,
                        tabs_per_s=tabs / elapsed_s,
                    )
                )

    def _sample_platform(self) -> PlatformSample | None:
        if self._sampler is None:
            return None
        try:
            return self._sampler()
        except Exception as error:  # one missing second, said once per kind of failure
            message = f"{type(error).__name__}: {error}"
            if message != self._last_sampler_error:
                self._last_sampler_error = message
                progress.say(f"observer: platform sample failed: {message}")
            return None


def summarize(
    rows: Sequence[OrderRow],
    timeline: Sequence[TimelineSample] = (),
    *,
    dead_letters: int = 0,
    final: bool = False,
    lost_after_s: float = 60.0,
    observed_at_ns: int | None = None,
    since_ns: int | None = None,
    makers: int = 0,
    orphan_tabs: int = 0,
    invalid_orders: int = 0,
    invalid_tabs: int = 0,
) -> Summary:
    """The figures of one window from its per-order rows: `Observer.summary` without Kafka.

    An incomplete order is lost when the run is over (`final`) or when it is older than
    `lost_after_s` at `observed_at_ns` (now by default).
    """
    now = time.time_ns() if observed_at_ns is None else observed_at_ns
    rows = sorted(rows, key=lambda row: row.ordered_at_ns)
    lost_after_ns = lost_after_s * NS_PER_S
    lost = [
        row
        for row in rows
        if row.latency_s is None and (final or now - row.ordered_at_ns > lost_after_ns)
    ]
    latencies = [row.latency_s for row in rows if row.latency_s is not None]
    made_latencies = [row.made_latency_s for row in rows if row.made_latency_s is not None]
    return Summary(
        orders=len(rows),
        tabs=sum(row.tabs_received for row in rows),
        complete_orders=len(latencies),
        incomplete_orders=len(rows) - len(latencies),
        lost_orders=len(lost),
        duplicate_tabs=sum(row.duplicates for row in rows),
        dead_letters=dead_letters,
        latency_s=latency_stats(latencies),
        made_latency_s=latency_stats(made_latencies),
        max_jobs=max((s.jobs for s in timeline if s.jobs is not None), default=None),
        timeline=list(timeline),
        throughput=_throughput(timeline),
        per_order=rows,
        lost_order_ids=[row.order_id for row in lost[:_LOST_IDS_SHOWN]],
        makers=makers,
        orphan_tabs=orphan_tabs,
        invalid_orders=invalid_orders,
        invalid_tabs=invalid_tabs,
        since_ns=since_ns,
        observed_at_ns=now,
        final=final,
    )


class _Once(Generic[T]):
    """A value computed on first use: the end offsets a wait compares against are asked for once,
    inside the wait, so that a broker hiccup is retried like any other observation."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._compute()
        return self._value


def _row(order_id: str, state: _OrderState) -> OrderRow:
    return OrderRow(
        order_id=order_id,
        ordered_at_ns=state.ordered_at_ns or 0,
        tabs_count=state.tabs_count or 0,
        tabs_received=len(state.received_ns),
        duplicates=state.duplicates,
        makers=len(state.makers),
        latency_s=state.latency_s(),
        made_latency_s=state.made_latency_s(),
    )


def _throughput(timeline: Sequence[TimelineSample]) -> Throughput:
    if not timeline:
        return Throughput(orders_per_s=0.0, tabs_per_s=0.0)
    return Throughput(
        orders_per_s=sum(s.orders_per_s for s in timeline) / len(timeline),
        tabs_per_s=sum(s.tabs_per_s for s in timeline) / len(timeline),
    )
