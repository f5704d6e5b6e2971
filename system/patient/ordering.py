"""What a patient orders and when: pure functions, shared by the service and the Locust patients.

The schedule is a grid: the n-th order is due at `start + n × period`, so the rate stays exactly
one order per period however long a send takes (a "sleep after send" loop drifts by the send time
every period). When the patient falls behind (a stalled process, a long GC, a suspended pod), the
missed slots collapse into one order sent at once and the grid resumes: never a burst of catch-up
orders, never a shifted phase.
"""

from __future__ import annotations

import math
import random
import uuid

from medpubsub.messages import Order
from medpubsub.settings import PatientSettings


def build_order(settings: PatientSettings, rng: random.Random, now_ns: int) -> Order:
    """One order from this patient: a fresh uuid4 and a tab count uniform in [min, max].

    The tab count comes from `rng` and the time from `now_ns` so that callers (tests, Locust
    users) control both; the id always comes from `uuid4` (the OS's randomness), because two
    patients given equally seeded generators must still never share an order id.
    """
    return Order(
        order_id=str(uuid.uuid4()),
        patient_id=settings.patient_id,
        tabs_count=rng.randint(settings.min_tabs_count, settings.max_tabs_count),
        ordered_at_ns=now_ns,
    )


def next_slot(sent_slot: int, start_s: float, period_s: float, now_s: float) -> int:
    """The grid slot to send next after sending slot `sent_slot`, the time now being `now_s`.

    Normally `sent_slot + 1`. When that slot and later ones are already past, the latest past slot
    is returned (it is due, so it is sent at once) and the older ones are skipped.
    """
    latest_past = math.floor((now_s - start_s) / period_s)
    return max(sent_slot + 1, latest_past)


def due_at(slot: int, start_s: float, period_s: float) -> float:
    """When `slot` is due on the monotonic clock (multiplied, never accumulated, so no drift)."""
    return start_s + slot * period_s
