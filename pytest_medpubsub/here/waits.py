"""A wait of `up`: shown as a progress step, bounded, and failing as one sentence that says what
was awaited and what was seen last (the harness's `wait_until` does the waiting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pytest_medpubsub import progress
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.waiting import WaitTimeout, wait_until

T = TypeVar("T")


def wait_step(
    describe: str,
    observe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout_s: float,
    *,
    interval_s: float = 1.0,
    hint: str = "",
) -> T:
    with progress.step(f"waiting for {describe}"):
        try:
            return wait_until(observe, accept, timeout_s, describe, interval_s)
        except WaitTimeout as error:
            raise HereError(f"{error}{f' ({hint})' if hint else ''}") from None
