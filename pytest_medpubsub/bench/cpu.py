"""CPU seconds of processes that come and go: sampled (`processes.cpu_seconds`) while they live.

A process already running when sampling starts counts from there (a warm maker's start is not
the run's); one that starts later counts whole.

A maker's CPU time is read every half second and the last reading is kept when it exits, so
what a maker spends in its last half second is missed; makers are idle then (they leave after
an idle timeout), so the error is small and stated in the report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from pytest_medpubsub.processes import cpu_seconds


class CpuSampler:
    """Keeps the latest CPU reading of every pid `pids()` names, until stopped."""

    def __init__(self, pids: Callable[[], Iterable[int]], interval_s: float = 0.5) -> None:
        self._pids = pids
        self._interval_s = interval_s
        self._seen: dict[int, float] = {}
        self._before: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._before = dict(self._seen)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    @property
    def total_s(self) -> float:
        return sum(seconds - self._before.get(pid, 0.0) for pid, seconds in self._seen.items())

    @property
    def processes(self) -> int:
        return len(self._seen)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            pids = list(self._pids())
        except Exception:  # the platform is stopping; keep what was seen
            return
        for pid in pids:
            seconds = cpu_seconds(pid)
            if seconds is not None:
                self._seen[pid] = max(seconds, self._seen.get(pid, 0.0))
