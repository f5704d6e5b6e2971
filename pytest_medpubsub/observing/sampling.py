"""The platform's figures once a second (patients, unfinished makers, lag) for the timeline.

A platform that cannot answer for a second (a broker restarting under chaos, a cluster API that
is slow) leaves that second's platform fields empty; the failure is said once per kind, not once
per second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_medpubsub import progress
from pytest_medpubsub.observing.figures import TimelineSample


@dataclass(frozen=True)
class PlatformSample:
    """What the platform reports once a second: running patients, unfinished makers, order lag."""

    patients: int
    jobs: int
    lag: int


class PlatformSampler:
    """Asks `sampler` (when there is one) and turns one second of counts into a sample."""

    def __init__(self, sampler: Callable[[], PlatformSample] | None) -> None:
        self._sampler = sampler
        self._last_error = ""

    def sample(self) -> PlatformSample | None:
        if self._sampler is None:
            return None
        try:
            return self._sampler()
        except Exception as error:  # one missing second, said once per kind of failure
            message = f"{type(error).__name__}: {error}"
            if message != self._last_error:
                self._last_error = message
                progress.say(f"observer: platform sample failed: {message}")
            return None


def timeline_sample(
    now_ns: int, platform: PlatformSample | None, orders: int, tabs: int, elapsed_s: float
) -> TimelineSample:
    """One second of the timeline: the platform's figures and the rates read in `elapsed_s`."""
    elapsed_s = max(elapsed_s, 1e-9)
    return TimelineSample(
        t_ns=now_ns,
        patients=None if platform is None else platform.patients,
        jobs=None if platform is None else platform.jobs,
        lag=None if platform is None else platform.lag,
        orders_per_s=orders / elapsed_s,
        tabs_per_s=tabs / elapsed_s,
    )
