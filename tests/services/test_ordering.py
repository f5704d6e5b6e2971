"""The patient's pure parts: what an order holds and when the next one is due."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import pytest

from medpubsub.patient.ordering import build_order, due_at, next_slot
from medpubsub.settings import PatientSettings


def test_an_order_has_a_fresh_uuid4_this_patient_and_the_given_time() -> None:
    settings = PatientSettings(patient_id="patient-7", min_tabs_count=1, max_tabs_count=30)

    first = build_order(settings, random.Random(1), now_ns=123)
    second = build_order(settings, random.Random(1), now_ns=456)

    assert uuid.UUID(first.order_id).version == 4
    assert first.order_id != second.order_id  # even from equally seeded generators
    assert (first.patient_id, first.ordered_at_ns) == ("patient-7", 123)
    assert first.tabs_count == second.tabs_count


def test_tab_counts_are_uniform_over_the_whole_range() -> None:
    settings = PatientSettings(patient_id="p", min_tabs_count=3, max_tabs_count=6)
    rng = random.Random(42)

    counts = Counter(build_order(settings, rng, 0).tabs_count for _ in range(4000))

    assert set(counts) == {3, 4, 5, 6}
    assert all(850 < count < 1150 for count in counts.values()), counts


def test_a_fixed_count_is_always_that_count() -> None:
    settings = PatientSettings(patient_id="p", min_tabs_count=30, max_tabs_count=30)

    assert {build_order(settings, random.Random(), 0).tabs_count for _ in range(50)} == {30}


@pytest.mark.parametrize(
    ("sent_slot", "now_s", "expected"),
    [
        (0, 0.001, 1),  # on time: the next slot
        (4, 4.9, 5),  # a slow send within its period: still the next slot
        (0, 1.2, 1),  # slot 1 is already due: it is sent at once
        (0, 3.5, 3),  # slots 1 and 2 missed: they collapse into slot 3, sent at once
        (3, 3.5, 4),  # after the late send, back on the grid
    ],
)
def test_the_next_slot_skips_missed_slots_but_one(
    sent_slot: int, now_s: float, expected: int
) -> None:
    assert next_slot(sent_slot, start_s=0.0, period_s=1.0, now_s=now_s) == expected


def simulate(period_s: float, send_s: float, stall: tuple[int, float], sends: int) -> list[float]:
    """The send times of the patient's loop on a fake clock: each send takes `send_s`, and the
    send of slot `stall[0]` takes `stall[1]` instead."""
    clock, slot, sent_at = 0.0, 0, []
    for _ in range(sends):
        clock = max(clock, due_at(slot, 0.0, period_s))
        sent_at.append(clock)
        clock += stall[1] if slot == stall[0] else send_s
        slot = next_slot(slot, 0.0, period_s, clock)
    return sent_at


def test_a_slow_send_does_not_shift_the_schedule() -> None:
    sent_at = simulate(period_s=0.2, send_s=0.05, stall=(-1, 0.0), sends=50)

    assert sent_at == pytest.approx([n * 0.2 for n in range(50)])


def test_a_stall_costs_the_missed_slots_but_one_and_then_the_grid_resumes() -> None:
    sent_at = simulate(period_s=1.0, send_s=0.01, stall=(2, 3.5), sends=6)

    # Slot 2's send takes until 5.5: slots 3 and 4 are skipped, slot 5 is sent late at once,
    # then slot 6 on time. No burst of catch-up orders.
    assert sent_at == pytest.approx([0.0, 1.0, 2.0, 5.5, 6.0, 7.0])


def test_due_times_are_multiplied_not_accumulated() -> None:
    assert due_at(1_000_000, start_s=10.0, period_s=0.1) == pytest.approx(100_010.0, abs=1e-9)
