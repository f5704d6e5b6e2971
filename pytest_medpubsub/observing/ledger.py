"""The per-order ledger: what is known of each order id from the orders, tabs and dead letters
read so far, and the questions asked of it (rows for a summary, orders seen, what is still
missing).

Pure bookkeeping, no Kafka and no clock: the observer feeds it what it reads, with the time it
read it, and holds one lock around every call (the ledger itself is not thread-safe). A tab may
arrive before its order (the three topics are read independently), so an order id can have tabs
and no order yet: such tabs are orphans until the order shows up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from medpubsub.messages import Order, Tab
from pytest_medpubsub.observing.figures import NS_PER_S, OrderRow


@dataclass
class OrderState:
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

    def row(self, order_id: str) -> OrderRow:
        return OrderRow(
            order_id=order_id,
            ordered_at_ns=self.ordered_at_ns or 0,
            tabs_count=self.tabs_count or 0,
            tabs_received=len(self.received_ns),
            duplicates=self.duplicates,
            makers=len(self.makers),
            latency_s=self.latency_s(),
            made_latency_s=self.made_latency_s(),
        )


@dataclass(frozen=True)
class Window:
    """What the ledger holds of the orders placed since a point: the inputs of a summary."""

    rows: list[OrderRow]
    makers: int
    orphan_tabs: int
    dead_letters: int
    invalid_orders: int
    invalid_tabs: int


@dataclass(frozen=True)
class Missing:
    """The incomplete orders placed since a point (what a drain waits for)."""

    orders: int
    tabs: int
    oldest_ordered_at_ns: int | None


class Ledger:
    """Orders by id, dead letters by when they failed, and counts of what could not be read."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderState] = {}
        self.dead_letters_ns: list[int] = []
        self.invalid_orders = 0
        self.invalid_tabs = 0
        # Records since the last `take_tick`: the timeline's orders/s and tabs/s.
        self._orders_in_tick = 0
        self._tabs_in_tick = 0

    # -- what was read -----------------------------------------------------------------------

    def record_order(self, order: Order | None) -> None:
        """An order read from the orders topic; None for a record that is not one (its dead
        letter, if any, arrives on the dead-letter topic). The first reading of an id counts."""
        self._orders_in_tick += 1
        if order is None:
            self.invalid_orders += 1
            return
        state = self.orders.setdefault(order.order_id, OrderState())
        if state.ordered_at_ns is None:
            state.ordered_at_ns = order.ordered_at_ns
            state.tabs_count = order.tabs_count

    def record_tab(self, tab: Tab | None, read_at_ns: int) -> None:
        """A tab read at `read_at_ns`; None for a record that is not one. A tab id read again is
        a duplicate (its maker still counts as one that worked on the order)."""
        if tab is None:
            self.invalid_tabs += 1
            return
        self._tabs_in_tick += 1
        state = self.orders.setdefault(tab.order_id, OrderState())
        state.makers.add(tab.maker)
        if tab.tab_id in state.tab_ids:
            state.duplicates += 1
            return
        state.tab_ids.add(tab.tab_id)
        state.received_ns.setdefault(tab.index, read_at_ns)
        state.made_at_ns.setdefault(tab.index, tab.made_at_ns)

    def record_dead_letter(self, failed_at_ns: int) -> None:
        self.dead_letters_ns.append(failed_at_ns)

    def take_tick(self) -> tuple[int, int]:
        """Orders and tabs read since the last call."""
        counts = (self._orders_in_tick, self._tabs_in_tick)
        self._orders_in_tick = self._tabs_in_tick = 0
        return counts

    # -- questions ---------------------------------------------------------------------------

    def _placed_since(self, since_ns: int | None) -> Iterator[tuple[str, OrderState]]:
        for order_id, state in self.orders.items():
            if state.ordered_at_ns is not None and (
                since_ns is None or state.ordered_at_ns >= since_ns
            ):
                yield order_id, state

    def window(self, since_ns: int | None) -> Window:
        """The rows of the orders placed at or after `since_ns` (all with None), and the counts
        a summary reports beside them."""
        states = list(self._placed_since(since_ns))
        return Window(
            rows=[state.row(order_id) for order_id, state in states],
            makers=len(set().union(*(state.makers for _, state in states))),
            orphan_tabs=sum(len(s.received_ns) for s in self.orders.values() if not s.seen),
            dead_letters=sum(
                1 for ns in self.dead_letters_ns if since_ns is None or ns >= since_ns
            ),
            invalid_orders=self.invalid_orders,
            invalid_tabs=self.invalid_tabs,
        )

    def count_seen(self, since_ns: int | None) -> int:
        """Orders placed at or after `since_ns` that were read."""
        return sum(1 for _ in self._placed_since(since_ns))

    def missing(self, since_ns: int | None) -> Missing:
        """The orders placed at or after `since_ns` that are not complete, and their tabs."""
        incomplete = [state for _, state in self._placed_since(since_ns) if not state.complete]
        tabs = sum((s.tabs_count or 0) - len(s.received_ns) for s in incomplete)
        return Missing(
            orders=len(incomplete),
            tabs=max(tabs, 0),
            oldest_ordered_at_ns=min(
                (s.ordered_at_ns for s in incomplete if s.ordered_at_ns is not None), default=None
            ),
        )
