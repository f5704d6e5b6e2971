"""The observer: watches every order, tab and dead letter the system publishes, as a client would.

It reads the three topics `read_committed` from their beginning, so it counts only what a real
consumer of `tabs.deliveries` could see: a tab inside an aborted (or still open) transaction is
not delivered, and a tab made twice by two committed transactions is a duplicate. An order's
latency ends when its last tab became *visible* (the observer's clock when it consumed the tab),
not when the maker says it made it; the made-latency is kept beside it to tell the two apart.

This module puts together the parts in `pytest_medpubsub/observing/`, one job each:

- `reader.py` reads the topics and knows how far it has read (Kafka only);
- `ledger.py` keeps what is known of each order (pure);
- `sampling.py` samples the platform once a second for the timeline;
- `drain.py` says when a run has drained;
- `figures.py` computes the figures of docs/design.md §2.5 from the ledger's rows (pure).

Two background threads do the work: one reads Kafka into the ledger, one takes a timeline sample
every second. The ledger and the timeline sit behind one lock, so `summary()` computes from a
consistent view. The names a caller needs (`Summary`, `Mark`, `PlatformSample`, …) are importable
from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE
from confluent_kafka import Message as KafkaMessage
from pydantic import ValidationError

from medpubsub.messages import DeadLetter, Order, Tab, parse_order
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress
from pytest_medpubsub.observing.drain import DrainState, Once
from pytest_medpubsub.observing.figures import (
    NS_PER_S,
    LatencyStats,
    OrderRow,
    Summary,
    Throughput,
    TimelineSample,
    latency_stats,
    percentile,
    summarize,
)
from pytest_medpubsub.observing.ledger import Ledger
from pytest_medpubsub.observing.reader import TopicsReader
from pytest_medpubsub.observing.sampling import PlatformSample, PlatformSampler, timeline_sample
from pytest_medpubsub.waiting import WaitTimeout, wait_until

__all__ = [
    "NS_PER_S",
    "LatencyStats",
    "Mark",
    "Observer",
    "OrderRow",
    "PlatformSample",
    "Summary",
    "Throughput",
    "TimelineSample",
    "latency_stats",
    "percentile",
    "summarize",
]

_DRAIN_REPORT_EVERY_S = 5.0


@dataclass(frozen=True)
class Mark:
    """A point in time (wall clock, ns): summaries `since` it cover orders placed from then on."""

    ns: int


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
        self._sampler = PlatformSampler(sampler)
        self._lost_after_s = lost_after_s
        self._sample_interval_s = sample_interval_s
        self._reader = TopicsReader(
            kafka, (kafka.orders_topic, kafka.deliveries_topic, kafka.dlq_topic), self._record
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Guarded by _lock.
        self._lock = threading.Lock()
        self._ledger = Ledger()
        self._timeline: list[TimelineSample] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self, connect_timeout_s: float = 30.0) -> Observer:
        """Connect, assign every partition of the three topics from the beginning, start threads.

        Raises `WaitTimeout` when Kafka cannot be reached within `connect_timeout_s`.
        """
        self._reader.connect(connect_timeout_s)
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._reader.run,
                args=(self._stopping,),
                name="observer-consume",
                daemon=True,
            ),
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
        self._reader.close()

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
        self._reader.raise_if_failed()
        now = time.time_ns()
        since_ns = since.ns if since is not None else None
        with self._lock:
            window = self._ledger.window(since_ns)
            timeline = [s for s in self._timeline if since_ns is None or s.t_ns >= since_ns]
        return summarize(
            window.rows,
            timeline,
            dead_letters=window.dead_letters,
            final=final,
            lost_after_s=self._lost_after_s,
            observed_at_ns=now,
            since_ns=since_ns,
            makers=window.makers,
            orphan_tabs=window.orphan_tabs,
            invalid_orders=window.invalid_orders,
            invalid_tabs=window.invalid_tabs,
        )

    def wait_caught_up(self, timeout_s: float) -> None:
        """Wait until the observer has read everything committed before this call.

        The end offsets are asked for once (read_committed: the last stable offsets), so a
        steady stream of new records does not keep the wait from ending.
        """
        end_offsets = Once(self._reader.end_offsets)
        topics = ", ".join(self._reader.topics)
        wait_until(
            lambda: self._reader.records_behind(end_offsets.get()),
            lambda behind: behind == 0,
            timeout_s=timeout_s,
            describe=f"the observer to read everything committed on {topics}",
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
        end_offsets = Once(self._reader.end_offsets)
        last_report = [time.monotonic()]

        def observe() -> DrainState:
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

    # ---------------------------------------------------------------- internals

    def _count_seen(self, since: Mark | None) -> int:
        self._reader.raise_if_failed()
        with self._lock:
            return self._ledger.count_seen(since.ns if since is not None else None)

    def _drain_state(
        self, since: Mark | None, end_offsets: dict[tuple[str, int], int]
    ) -> DrainState:
        behind = self._reader.records_behind(end_offsets)
        with self._lock:
            missing = self._ledger.missing(since.ns if since is not None else None)
        return DrainState.of(behind, missing, time.time_ns())

    def _record(self, message: KafkaMessage, read_at_ns: int) -> None:
        """One record read by the reader, into the ledger (on the reading thread)."""
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:  # the reader passes none such
            return
        if topic == self._kafka.orders_topic:
            parsed = parse_order(message.value(), topic, partition, offset)
            with self._lock:
                self._ledger.record_order(parsed if isinstance(parsed, Order) else None)
        elif topic == self._kafka.deliveries_topic:
            try:
                tab: Tab | None = Tab.model_validate_json(message.value() or b"")
            except ValidationError:
                tab = None
            with self._lock:
                self._ledger.record_tab(tab, read_at_ns)
        elif topic == self._kafka.dlq_topic:
            failed_ns = _failed_at_ns(message, read_at_ns)
            with self._lock:
                self._ledger.record_dead_letter(failed_ns)

    def _sample_loop(self) -> None:
        next_tick = time.monotonic() + self._sample_interval_s
        last_ns = time.time_ns()
        while not self._stopping.wait(max(0.0, next_tick - time.monotonic())):
            next_tick = max(next_tick + self._sample_interval_s, time.monotonic())
            platform = self._sampler.sample()
            now = time.time_ns()
            elapsed_s = (now - last_ns) / NS_PER_S
            last_ns = now
            with self._lock:
                orders, tabs = self._ledger.take_tick()
                self._timeline.append(timeline_sample(now, platform, orders, tabs, elapsed_s))


def _failed_at_ns(message: KafkaMessage, read_at_ns: int) -> int:
    """Dead letters are dated by when they failed (so catching up on old ones does not date them
    now); by the record's timestamp, or by when it was read, when that cannot be read."""
    try:
        return DeadLetter.model_validate_json(message.value() or b"").failed_at_ns
    except ValidationError:
        timestamp_type, timestamp_ms = message.timestamp()
        return read_at_ns if timestamp_type == TIMESTAMP_NOT_AVAILABLE else timestamp_ms * 1_000_000
