"""How long a maker has had nothing to do, which decides when it leaves (scale-in).

Idle time is reset by a record taken or an order in flight, and paused, not reset, while the
maker registers partitions it was just given. Why paused: when several makers go idle together at
the end of a load, each one that leaves hands its partitions to the others; if registering them
reset the others' idle time, every departure would buy the rest another full idle timeout, and
the makers would leave one wave at a time (eight makers took 46 s to scale in on the cluster,
with a 10 s timeout). Paused, a maker whose partitions arrive with no record on them leaves when
its own idle time is up, and registering still never counts as idle (on a small CPU share it
takes seconds, and a warm maker must not leave in the middle of it).
"""

from __future__ import annotations


class IdleClock:
    """Seconds of idleness, advanced by `tick` with what the maker is doing at that moment."""

    def __init__(self, now: float) -> None:
        self._idle_s = 0.0
        self._last = now

    def tick(self, now: float, *, busy: bool, registering: bool) -> float:
        """Advance to `now`: the time since the last tick counts only if the maker was neither
        busy nor registering; busy resets the count. Returns the idle seconds so far."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        if busy:
            self._idle_s = 0.0
        elif not registering:
            self._idle_s += elapsed
        return self._idle_s

    def reset(self, now: float) -> None:
        """A record was taken: idle from `now` on."""
        self._idle_s = 0.0
        self._last = now
