"""When a run has drained: every order seen is complete and everything committed has been read.

Both halves matter. Complete orders alone would call a run drained while the reader is still
behind (an order published just before the question not read yet); read-up-to-date alone would
call it drained while makers are still making tabs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pytest_medpubsub.observing.figures import NS_PER_S
from pytest_medpubsub.observing.ledger import Missing

T = TypeVar("T")


@dataclass(frozen=True)
class DrainState:
    """What `wait_drained` looks at; its repr is what a timeout reports as seen last."""

    behind: int
    incomplete: int
    missing_tabs: int
    oldest_incomplete_s: float | None

    @classmethod
    def of(cls, behind: int, missing: Missing, now_ns: int) -> DrainState:
        """From the records left to read and the ledger's incomplete orders, at `now_ns`."""
        oldest = missing.oldest_ordered_at_ns
        return cls(
            behind=behind,
            incomplete=missing.orders,
            missing_tabs=missing.tabs,
            oldest_incomplete_s=None if oldest is None else (now_ns - oldest) / NS_PER_S,
        )

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


class Once(Generic[T]):
    """A value computed on first use: the end offsets a wait compares against are asked for once,
    inside the wait, so that a broker hiccup is retried like any other observation."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._compute()
        return self._value
