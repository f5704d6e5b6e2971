"""Waiting for a condition, with a timeout that says what was awaited and what was seen last.

Every wait in the harness goes through `wait_until`, so a failure never reads "timed out" alone:
it names the condition and the last observation, the way KEDA's e2e helpers log the counts they
saw while waiting for a job count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message says which and what was seen last."""


def wait_until(
    observe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout_s: float,
    describe: str,
    interval_s: float = 0.2,
) -> T:
    """Call `observe` until `accept(observation)` holds; return that observation.

    `observe` may raise: the exception counts as the last thing seen (a broker that is not up yet
    refuses connections), and the wait goes on until the deadline.
    """
    deadline = time.monotonic() + timeout_s
    last: str = "nothing yet"
    while True:
        try:
            observation = observe()
        except Exception as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if accept(observation):
                return observation
            last = repr(observation)
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout_s:g} s for {describe}; last saw {last}")
        time.sleep(interval_s)


def wait_for(
    condition: Callable[[], bool], timeout_s: float, describe: str, interval_s: float = 0.2
) -> None:
    """`wait_until` for a yes/no condition."""
    wait_until(condition, bool, timeout_s, describe, interval_s)


def stays(
    observe: Callable[[], T],
    accept: Callable[[T], bool],
    duration_s: float,
    describe: str,
    interval_s: float = 0.5,
) -> None:
    """Check that `accept(observe())` holds for the whole of `duration_s` ("count stays at N")."""
    deadline = time.monotonic() + duration_s
    while True:
        observation = observe()
        if not accept(observation):
            raise WaitTimeout(f"expected {describe} for {duration_s:g} s; saw {observation!r}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval_s)
