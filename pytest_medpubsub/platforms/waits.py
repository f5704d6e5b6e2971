"""A wait of the cluster platforms: shown as a progress step, bounded by a timeout, and failing
as a `PlatformError` that says what was awaited and what was seen last (the harness's
`wait_until` does the waiting, so the message reads the same everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.waiting import WaitTimeout, wait_until

T = TypeVar("T")
POLL_INTERVAL_S = 2.0


def wait_step(
    describe: str,
    observe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout_s: float,
    interval_s: float = POLL_INTERVAL_S,
) -> T:
    """Wait until `accept(observe())`; `describe` completes "waiting for ..."."""
    with progress.step(f"waiting for {describe}"):
        try:
            return wait_until(observe, accept, timeout_s, describe, interval_s)
        except WaitTimeout as error:
            raise PlatformError(str(error)) from None
