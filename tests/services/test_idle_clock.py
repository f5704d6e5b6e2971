"""The maker's idle time, table-driven: reset by work, paused (not reset) while registering; and
which idle makers stay warm (warm.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medpubsub.medicine.idle import IdleClock
from medpubsub.medicine.warm import among_warm

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


@pytest.mark.parametrize(
    ("own", "members", "warm", "stays"),
    [
        ("b", ["a", "b", "c"], 2, True),  # among the first two by id
        ("c", ["a", "b", "c"], 2, False),  # the surplus leaves
        ("a", ["a"], 2, True),  # below the floor: stays
        ("c", ["a", "b"], 2, False),  # missing from the view, still ranked: third
        ("a", ["b", "c"], 2, True),  # missing from the view, ranked first
        ("a", ["a", "b"], 0, False),  # no warm makers: every idle maker leaves
        ("b", ["b", "a"], 1, False),  # the view's order does not matter, only the ids
    ],
)
def test_an_idle_maker_stays_only_among_the_first_warm_members_by_id(
    own: str, members: list[str], warm: int, stays: bool
) -> None:
    assert among_warm(own, members, warm) is stays


@given(
    group=st.sets(st.text(min_size=1, max_size=4), min_size=1, max_size=8),
    warm=st.integers(min_value=0, max_value=4),
    data=st.data(),
)
def test_a_warm_maker_stays_warm_in_every_smaller_view_of_its_group(
    group: set[str], warm: int, data: st.DataObject
) -> None:
    # Makers leaving one after another never take a warm one along: a maker among the first
    # `warm` of the whole group is among the first `warm` of whatever part of it a look sees.
    own = data.draw(st.sampled_from(sorted(group)))
    view = data.draw(st.sets(st.sampled_from(sorted(group))))
    if among_warm(own, group, warm):
        assert among_warm(own, view, warm)
