"""The orders of each partition that are being made, in offset order: who may commit when.

A partition's offsets must be committed in order and never past an order that is not made:
committing order B's offset while an earlier order A of the same partition is still open would
skip A for good if A then failed. So an order commits only after the order before it on its
partition committed; if that one did not, it aborts too, and the partition is read again from the
first order that was not committed. Every tab takes the same time, so the orders of a partition
finish in arrival order anyway and the wait is for milliseconds of commit, not for making.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

PartitionKey = tuple[str, int]
Fate = Literal["commit", "hand over"]


@dataclass(eq=False)
class InFlight:
    """One record being made: where it is, what it holds, and how its transaction ended."""

    key: PartitionKey
    offset: int
    workers: int
    before: InFlight | None  # the previous unsettled order of the same partition
    settled: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    # Its partition was revoked while it was being made: it goes on, and commits if this maker
    # gets there before the next owner's registration fences it; otherwise the next owner makes
    # it. Either way the partition is not this maker's to read again.
    departing: bool = False
    # The partition's previous holder committed it after this maker started it (found by the
    # registration check): handed over to the past, and as good as committed for the orders
    # behind it.
    made_earlier: bool = False
    # What the order comes to, decided once under `_deciding`, by whichever asks first: the
    # order thread beginning its commit, or a revocation handing the order over unmade (its next
    # owner makes it again). Never both.
    _fate: Fate | None = None
    _deciding: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def handed_over(self) -> bool:
        return self._fate == "hand over"

    def claim_commit(self) -> bool:
        """The order thread is about to open its transaction: False when it was handed over."""
        return self._decide("commit")

    def hand_over(self) -> bool:
        """A revocation gives the order up unmade: False when its commit has already begun."""
        return self._decide("hand over")

    def _decide(self, fate: Fate) -> bool:
        with self._deciding:
            self._fate = self._fate or fate
            return self._fate == fate

    def settle(self, *, committed: bool) -> None:
        self.committed = committed
        self.before = None  # nothing further back needs to be kept alive
        self.settled.set()

    def earlier_committed(self, timeout_s: float) -> bool:
        """Wait for the order before this one on its partition; True when it committed (or there
        is none), False when it did not or did not settle within `timeout_s`."""
        before = self.before
        if before is None:
            return True
        return before.settled.wait(timeout_s) and (before.committed or before.made_earlier)


class PartitionLines:
    """The unsettled orders per partition, and where a partition must be read again from.

    Only the maker's main thread calls these methods; order threads only use `InFlight`.
    """

    def __init__(self) -> None:
        self._lines: dict[PartitionKey, list[InFlight]] = {}
        self._reread_from: dict[PartitionKey, int] = {}
        # Partitions sought back to an offset, and the offset: until a record from there is
        # polled, a polled record of the partition was fetched before the seek (`stale`).
        self._rewound: dict[PartitionKey, int] = {}
        # Partitions whose previous holder committed past where this maker started them: the
        # offset it committed up to, below which a polled record is already made.
        self._made_below: dict[PartitionKey, int] = {}

    def enter(self, key: PartitionKey, offset: int, workers: int) -> InFlight:
        line = self._lines.setdefault(key, [])
        entry = InFlight(key, offset, workers, before=line[-1] if line else None)
        line.append(entry)
        return entry

    def leave(self, entry: InFlight) -> None:
        """`entry` settled: forget it; an uncommitted one marks its partition to be read again."""
        line = self._lines.get(entry.key, [])
        if entry in line:
            line.remove(entry)
        if not line:
            self._lines.pop(entry.key, None)
        # A handed-over or departing one is not ours to read again.
        if not entry.committed and not entry.handed_over and not entry.departing:
            known = self._reread_from.get(entry.key)
            self._reread_from[entry.key] = (
                entry.offset if known is None else min(known, entry.offset)
            )

    def unsettled(self, keys: set[PartitionKey] | None = None) -> list[InFlight]:
        return [
            entry
            for key, line in self._lines.items()
            if keys is None or key in keys
            for entry in line
        ]

    def rereading(self, key: PartitionKey) -> bool:
        """The partition waits to be read again: records polled from it now are dropped."""
        return key in self._reread_from

    def ready_to_reread(self) -> list[tuple[PartitionKey, int]]:
        """Partitions whose failed orders have all settled: (partition, offset to read from).

        The caller seeks each back there; each counts as `rewound` from then on.
        """
        ready = [
            (key, offset) for key, offset in self._reread_from.items() if key not in self._lines
        ]
        for key, offset in ready:
            del self._reread_from[key]
            self.rewind(key, offset)
        return ready

    def rewind(self, key: PartitionKey, offset: int) -> None:
        """The partition was sought back to `offset`: records polled until it comes are stale."""
        self._rewound[key] = offset

    def stale(self, key: PartitionKey, offset: int) -> bool:
        """A record polled after its partition was sought back, but fetched before the seek.

        librdkafka can still hand out records it had fetched when a seek was asked (measured at
        60 patients: the order after a failed one, polled 89 ms after the partition was sought
        back to the failed one, was started, committed, and then made again after the failed
        one: every tab twice). Started, it would commit past the order it skipped. Such records
        are dropped until the record the partition was sought back to comes. So is a record below
        where the partition's previous holder committed it (`previous_holder_committed`).
        """
        expected = self._rewound.get(key)
        if expected is not None:
            if offset != expected:
                return True
            del self._rewound[key]
        # Checked after the seek's: a partition sought back below where its previous holder
        # committed must still see the record it was sought back to, or it would wait for it
        # for good.
        return offset < self._made_below.get(key, 0)

    def previous_holder_committed(self, key: PartitionKey, offset: int) -> list[InFlight]:
        """The partition's previous holder committed it up to `offset` after this maker started it.

        Its orders in flight below `offset` are given up (their threads stop, and never commit;
        the orders behind them do not wait for them), and records below it polled from now on are
        dropped as `stale`. Returns the orders given up.
        """
        self._made_below[key] = max(offset, self._made_below.get(key, 0))
        given_up = []
        for entry in self._lines.get(key, []):
            if entry.offset < offset:
                entry.made_earlier = True  # before its thread can settle, for the one behind it
                if entry.hand_over():
                    given_up.append(entry)
                else:  # its commit began: not possible before the partition is ready
                    entry.made_earlier = False
        return given_up

    def forget(self, keys: set[PartitionKey]) -> None:
        """The partitions went to another maker: it reads them from their committed offsets.

        Their orders handed over unmade settle later, and are not in the lines any more: should
        a partition come back, its first order does not wait behind them.
        """
        for key in keys:
            self._lines.pop(key, None)
            self._reread_from.pop(key, None)
            self._rewound.pop(key, None)
            self._made_below.pop(key, None)
