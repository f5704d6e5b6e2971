"""The machine's CPU around a measured run: how busy it was, and a wait for it to settle first.

Order latency on a small machine moves with whatever else runs on it: operators that were just
installed and are still reconciling, a JIT warming up, a build, another test session. So the
plugin waits, before a run on a cluster, until the machine is quiet enough (or a bound has
passed), and every report says how busy the machine was while the run was measured. A failed
latency SLO then says whether the machine was saturated, and by what (steal is CPU the
hypervisor gave to someone else; iowait is CPU idle while waiting for a disk).

The machine-wide counters come from psutil (`/proc/stat`); per-process figures are
`processes.py`'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from pytest_medpubsub import progress

# Linux counts guest time inside user and nice as well: summing both would count it twice.
_INSIDE_OTHERS = frozenset({"guest", "guest_nice"})
_NOT_BUSY = frozenset({"idle", "iowait"})


def percent(fraction: float) -> str:
    """A fraction as the reports write it: "84 %"."""
    return f"{fraction * 100:.0f} %"


@dataclass(frozen=True)
class CpuShare:
    """Fractions (0–1) of all CPUs' time over a window."""

    busy: float
    steal: float
    iowait: float
    cpus: int
    seconds: float

    def describe(self) -> str:
        """One phrase: "the machine was 84 % busy over 61 s (2 CPUs; steal 3 %, iowait 1 %)"."""
        return (
            f"the machine was {percent(self.busy)} busy over {self.seconds:.0f} s "
            f"({self.cpus} CPUs; steal {percent(self.steal)}, iowait {percent(self.iowait)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def share_between(
    before: Mapping[str, float], after: Mapping[str, float], cpus: int, seconds: float
) -> CpuShare:
    """The share of CPU time spent busy, stolen and waiting on I/O between two readings of the
    machine-wide counters (`psutil.cpu_times()._asdict()`)."""
    spent = {
        name: max(0.0, after[name] - before.get(name, 0.0))
        for name in after
        if name not in _INSIDE_OTHERS
    }
    total = sum(spent.values())
    if total <= 0:
        return CpuShare(busy=0.0, steal=0.0, iowait=0.0, cpus=cpus, seconds=seconds)
    busy = sum(value for name, value in spent.items() if name not in _NOT_BUSY)
    return CpuShare(
        busy=busy / total,
        steal=spent.get("steal", 0.0) / total,
        iowait=spent.get("iowait", 0.0) / total,
        cpus=cpus,
        seconds=seconds,
    )


class CpuWindow:
    """The machine's CPU share from when it was made until `share()` is asked."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._before = psutil.cpu_times()._asdict()

    def share(self) -> CpuShare:
        return share_between(
            self._before,
            psutil.cpu_times()._asdict(),
            psutil.cpu_count() or 1,
            time.monotonic() - self._started,
        )


def wait_until_quiet(max_busy: float, timeout_s: float, window_s: float = 2.0) -> CpuShare:
    """Wait until one `window_s` of the machine is at most `max_busy` busy, or `timeout_s` has
    passed; return the last window's share either way (the caller says which it was).

    Not a `waiting.wait_until`: a machine that stays busy is a fact for the report, not a
    failure; the run goes on and its report carries how busy the machine was.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        window = CpuWindow()
        time.sleep(window_s)  # the window being measured, not a wait for a condition
        share = window.share()
        if share.busy <= max_busy or time.monotonic() >= deadline:
            return share


# Before a run on a cluster: operators installed a minute ago are still reconciling. Locally the
# harness started everything itself and waited for it, so no wait unless asked.
CLUSTER_QUIET_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class QuietWait:
    """How quiet the machine must be before a measured run, and how long to wait for it."""

    max_busy: float
    timeout_s: float

    @classmethod
    def parse(cls, percent: str, timeout: str, on_cluster: bool) -> QuietWait:
        """From the ini values (`medpubsub_quiet_cpu_percent`, `medpubsub_quiet_timeout_s`);
        an empty timeout means the platform's default. ValueError names the bad value."""
        try:
            busy = float(percent)
        except ValueError:
            raise ValueError(f"medpubsub_quiet_cpu_percent={percent!r} is not a number") from None
        if not 0 < busy <= 100:
            raise ValueError(f"medpubsub_quiet_cpu_percent={percent!r} is not in (0, 100]")
        if not timeout.strip():
            seconds = CLUSTER_QUIET_TIMEOUT_S if on_cluster else 0.0
        else:
            try:
                seconds = float(timeout)
            except ValueError:
                raise ValueError(
                    f"medpubsub_quiet_timeout_s={timeout!r} is not a number of seconds"
                ) from None
            if seconds < 0:
                raise ValueError(f"medpubsub_quiet_timeout_s={timeout!r} is negative")
        return cls(max_busy=busy / 100, timeout_s=seconds)


def settle(quiet: QuietWait) -> None:
    """Wait as `quiet` says, with progress, and say how busy the machine was at the end."""
    if quiet.timeout_s <= 0:
        return
    awaited = f"the machine to be at most {percent(quiet.max_busy)} busy"
    with progress.step(f"waiting up to {quiet.timeout_s:g} s for {awaited}"):
        share = wait_until_quiet(quiet.max_busy, quiet.timeout_s)
    still = "" if share.busy <= quiet.max_busy else "; the test runs anyway"
    progress.say(f"{share.describe()}{still}")
