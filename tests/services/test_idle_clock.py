"""The maker's idle time, table-driven: reset by work, paused (not reset) while registering."""

from __future__ import annotations

import pytest

from medpubsub.medicine.idle import IdleClock

# (seconds since start, busy, registering) at each tick.
Tick = tuple[float, bool, bool]


@pytest.mark.parametrize(
    ("ticks", "idle_s"),
    [
        pytest.param([(1, False, False), (4, False, False)], 4.0, id="idle-from-the-start"),
        pytest.param([(3, True, False), (5, False, False)], 2.0, id="busy-resets"),
        # Partitions handed over by a maker that left: 3 s idle, 2 s registering, 1 s idle.
        # Resetting here (the old behaviour) would have given 1 s, and another full timeout.
        pytest.param(
            [(3, False, False), (4, False, True), (5, False, True), (6, False, False)],
            4.0,
            id="registering-pauses",
        ),
        pytest.param([(2, False, True), (2.5, False, False)], 0.5, id="registering-at-start"),
        pytest.param([(5, False, False), (4, False, False)], 5.0, id="clock-never-runs-back"),
    ],
)
def test_idle_time(ticks: list[Tick], idle_s: float) -> None:
    clock = IdleClock(now=0.0)
    seen = [clock.tick(at, busy=busy, registering=registering) for at, busy, registering in ticks]
    assert seen[-1] == pytest.approx(idle_s)


def test_a_record_starts_the_idle_time_again() -> None:
    clock = IdleClock(now=0.0)
    clock.tick(8.0, busy=False, registering=False)
    clock.reset(now=9.0)
    assert clock.tick(10.5, busy=False, registering=False) == pytest.approx(1.5)
