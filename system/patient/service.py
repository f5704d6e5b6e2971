"""One patient: an order every period on a fixed grid, until SIGTERM / SIGINT.

Orders go through an idempotent producer with `acks=all`, so a retried send never duplicates an
order and an acknowledged order is on every in-sync replica. On a stop signal the patient orders
nothing more, waits (bounded) for the orders in flight to be acknowledged, and exits 0; stdout
gets one line at start and one at stop (with the counts), stderr one line per failed delivery.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from medpubsub.kafka_clients import order_producer_config
from medpubsub.messages import Order
from medpubsub.patient.ordering import build_order, due_at, next_slot
from medpubsub.settings import KafkaSettings, PatientSettings, load
from medpubsub.shutdown import StopRequest, start_service

FLUSH_TIMEOUT_S = 10.0
# How long a patient waits for the broker before its first order (see `_connect`).
CONNECT_TIMEOUT_S = 10.0

log = logging.getLogger("medpubsub.patient")


@dataclass
class Deliveries:
    """What became of the orders handed to the producer (updated by delivery reports)."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0

    def callback_for(self, order: Order) -> Callable[[KafkaError | None, Message], None]:
        """The producer's delivery callback for `order` (it names the order when it fails)."""
        return lambda error, _message: self.report(order, error)

    def report(self, order: Order, error: KafkaError | None) -> None:
        if error is None:
            self.acknowledged += 1
            return
        self.failed += 1
        log.error("order %s was not delivered: %s", order.order_id, error)


def run() -> int:
    """Run one patient until a stop signal; 0 when stopped, 1 on a fatal producer error."""
    kafka = load(KafkaSettings)
    patient = load(PatientSettings)
    stop = start_service(logging.WARNING)

    fatal: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        # Idempotence guarantees end with a fatal error: nothing sent afterwards would be safe.
        # Other errors (a broker away for a while) librdkafka logs and retries by itself.
        if error.fatal():
            fatal.append(error)
            stop.set()

    producer = Producer(
        order_producer_config(kafka, client_id=f"patient-{patient.patient_id}")
        | {"error_cb": on_error}
    )
    deliveries = Deliveries()
    _connect(producer, kafka.orders_topic, stop)
    print(
        f"patient {patient.patient_id}: ordering {patient.min_tabs_count}-{patient.max_tabs_count}"
        f" tabs every {patient.order_period_seconds} s to {kafka.orders_topic}"
        f" at {kafka.kafka_bootstrap}",
        flush=True,
    )
    order_until_stopped(producer, kafka.orders_topic, patient, deliveries, stop)
    unacknowledged = producer.flush(FLUSH_TIMEOUT_S)
    print(
        f"patient {patient.patient_id}: stopped by {stop.reason} after {deliveries.sent} orders:"
        f" {deliveries.acknowledged} acknowledged, {deliveries.failed} failed,"
        f" {unacknowledged} unacknowledged",
        flush=True,
    )
    if fatal:
        log.error("stopped by a fatal producer error: %s", fatal[0])
        return 1
    return 0


def _connect(producer: Producer, topic: str, stop: StopRequest) -> None:
    """Reach the broker and learn the topic's partitions before the first order is stamped.

    An order carries its patient's clock: a first order stamped before the producer has a
    connection, the topic's metadata and its idempotent producer id would carry the patient's own
    start-up (half a second here) as order latency. Bounded: with no broker the patient orders
    anyway, and librdkafka keeps the orders until the broker is there.
    """
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            metadata = producer.list_topics(topic, timeout=1.0)
        except KafkaException:
            continue
        found = metadata.topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return


def order_until_stopped(
    producer: Producer,
    topic: str,
    patient: PatientSettings,
    deliveries: Deliveries,
    stop: StopRequest,
) -> None:
    """Send one order per grid slot (see `ordering`) until `stop` is set."""
    rng = random.Random()
    period = patient.order_period_seconds
    start = time.monotonic()
    slot = 0
    while not stop.is_set():
        delay = due_at(slot, start, period) - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        order = build_order(patient, rng, time.time_ns())
        try:
            producer.produce(
                topic,
                order.to_bytes(),
                key=patient.patient_id,
                on_delivery=deliveries.callback_for(order),
            )
        except BufferError:  # the local queue is full: Kafka has been away for a long time
            deliveries.sent += 1
            deliveries.report(order, KafkaError(KafkaError._QUEUE_FULL, "producer queue is full"))
        else:
            deliveries.sent += 1
        producer.poll(0)  # serve delivery reports
        slot = next_slot(slot, start, period, time.monotonic())
