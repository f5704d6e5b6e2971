"""The patient against a real broker: a drift-free schedule and a clean stop on SIGTERM."""

from __future__ import annotations

import re
import signal

from medpubsub.messages import Order

from .kafka_io import ReaderFactory, ServiceFactory, TestTopics

PERIOD_S = 0.2
STOPPED = re.compile(
    r"stopped by SIGTERM after (?P<sent>\d+) orders: (?P<acknowledged>\d+) acknowledged,"
    r" (?P<failed>\d+) failed, (?P<unacknowledged>\d+) unacknowledged"
)


def patient_environment(topics: TestTopics, patient_id: str) -> dict[str, str]:
    return topics.environment(
        ORBITAL_PATIENT_ID=patient_id,
        ORBITAL_ORDER_PERIOD_SECONDS=PERIOD_S,
        ORBITAL_MIN_TABS_COUNT=3,
        ORBITAL_MAX_TABS_COUNT=4,
    )


def test_orders_follow_a_drift_free_schedule(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    patient = service("patient", patient_environment(topics, "patient-clock"))
    orders_topic = reader(topics, topics.orders)
    records = orders_topic.wait_for_count(15, timeout_s=20)
    patient.signal_and_wait(signal.SIGTERM, timeout_s=15)

    orders = sorted(
        (Order.model_validate(record.json()) for record in records[:15]),
        key=lambda order: order.ordered_at_ns,
    )
    first = orders[0].ordered_at_ns
    # The n-th order is due at start + n × period: each one's offset from the first stays within
    # a scheduling jitter, however many periods have passed (a "sleep after send" loop would
    # accumulate its send time every period instead).
    lateness_ms = [
        ((order.ordered_at_ns - first) - n * PERIOD_S * 1e9) / 1e6 for n, order in enumerate(orders)
    ]
    assert all(-5 < late < 50 for late in lateness_ms), lateness_ms
    assert {order.patient_id for order in orders} == {"patient-clock"}
    assert {order.tabs_count for order in orders} <= {3, 4}
    assert len({order.order_id for order in orders}) == 15


def test_sigterm_stops_ordering_and_every_acknowledged_order_is_in_the_topic(
    topics: TestTopics, service: ServiceFactory, reader: ReaderFactory
) -> None:
    patient = service("patient", patient_environment(topics, "patient-stop"))
    orders_topic = reader(topics, topics.orders)
    orders_topic.wait_for_count(5, timeout_s=20)

    assert patient.signal_and_wait(signal.SIGTERM, timeout_s=15) == 0, patient.output()
    stopped = STOPPED.search(patient.output())
    assert stopped is not None, patient.output()
    acknowledged = int(stopped["acknowledged"])
    assert (stopped["failed"], stopped["unacknowledged"]) == ("0", "0")
    assert int(stopped["sent"]) == acknowledged
    orders_topic.wait_for_count(acknowledged, timeout_s=10)
    records = orders_topic.read_to_end(timeout_s=10)

    assert len(records) == acknowledged
    assert {record.key for record in records} == {b"patient-stop"}
    assert len({record.json()["order_id"] for record in records}) == acknowledged
    assert "Traceback" not in patient.output()
