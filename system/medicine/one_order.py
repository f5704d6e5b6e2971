"""`medpubsub make-order`: make the one order the dispatcher handed over, exactly once.

The dispatcher design (system/dispatcher/) starts one maker per order and passes the order in
the maker's environment: `MEDICINE_ORDER` holds the order record's value and its coordinates in
the orders topic (`DispatchedOrder`). The maker consumes nothing; it makes the order's tabs in
one transaction (transaction.py, as the capacity maker does) and exits.

Exactly once, when the same order is handed to several makers (a retry after a crash, a
dispatcher that restarted before it committed):
- The transactional id comes from the order id (`medicine-order-<order_id>`), so a retried
  maker's `init_transactions` fences a zombie that still runs and aborts its open transaction
  at once: its half-made tabs never become visible, and the retry does not wait for
  `transaction.timeout.ms` either.
- How a retry knows the order was made: the transaction that commits the tabs also commits an
  offset for the order, past its record, in a consumer group of its own, `medicine-order-<id>`
  (`send_offsets_to_transaction` with that group's metadata). Tabs and marker commit together or
  not at all. A maker reads that group's committed offset *after* `init_transactions` (which
  lets a zombie's commit that was already under way finish, or aborts it), so a committed order
  is always seen: it then exits 0 without making anything. A maker killed right after its commit
  leaves the marker behind.
- Why this marker and not another: a committed-offset lookup is one OffsetFetch to the group
  coordinator, whatever the traffic, and it is atomic with the tabs because it is what Kafka
  transactions commit anyway. Checking the committed tabs would mean scanning the deliveries
  partition from the order's time; a marker record on a compacted topic would need the same
  scan (Kafka has no lookup by key). The cost: one small consumer group per order in
  `__consumer_offsets`, kept by the group coordinator until `offsets.retention.minutes` after
  the order (7 days by default) — about 30 bytes of offset and a group entry per order, which is
  why a busy cluster would shorten that retention for these groups' sake, or delete the groups
  of orders it has finished with.

Exit status: 0 made (or already made), 1 not made (Kafka failure, stopped mid-order: the
dispatcher starts the maker again), 2 a configuration error (a missing or malformed
MEDICINE_ORDER; the dispatcher gives the order up to the dead-letter topic).
"""

from __future__ import annotations

import logging
import os

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.lines import InFlight
from medpubsub.medicine.producers import (
    TRANSACTIONAL_PREFIX,
    ProducerUnavailable,
    registered_producer,
    transactional_factory,
)
from medpubsub.medicine.service import maker_name
from medpubsub.medicine.sweep import Sweep
from medpubsub.medicine.transaction import (
    Destinations,
    MakerFailed,
    Outcome,
    Workshop,
    make_in_transaction,
)
from medpubsub.medicine.watchdog import Watchdog
from medpubsub.messages import Order, parse_order
from medpubsub.settings import ConfigError, KafkaSettings, MedicineSettings, load
from medpubsub.shutdown import start_service

log = logging.getLogger("medpubsub.medicine")

ORDER_VARIABLE = "MEDICINE_ORDER"
MARKER_TIMEOUT_S = 15.0


class DispatchedOrder(BaseModel):
    """What the dispatcher hands a maker: the order record's value and where it sits."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    topic: str = Field(min_length=1)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    value: str
    key: str | None = None

    def record(self) -> Message:
        """The order as the record a consumer would have polled (what transaction.py takes)."""
        return Message(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=None if self.key is None else self.key.encode("utf-8"),
            value=self.value.encode("utf-8"),
        )

    def order(self) -> Order:
        parsed = parse_order(self.value.encode("utf-8"), self.topic, self.partition, self.offset)
        if not isinstance(parsed, Order):
            raise ConfigError(f"{ORDER_VARIABLE} holds no valid order: {parsed.reason}")
        return parsed


def dispatched_order(environ: dict[str, str] | os._Environ[str]) -> DispatchedOrder:
    text = environ.get(ORDER_VARIABLE)
    if not text:
        raise ConfigError(f"{ORDER_VARIABLE} is not set: it must hold the dispatched order (JSON)")
    try:
        return DispatchedOrder.model_validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        raise ConfigError(f"{ORDER_VARIABLE} is invalid: {where}: {first['msg']}") from None


def order_transactional_id(order_id: str) -> str:
    """Every maker of this order (a retry, a zombie) registers under this id, in turn."""
    return f"{TRANSACTIONAL_PREFIX}order-{order_id}"


def marker_group(order_id: str) -> str:
    """The consumer group whose committed offset says that this order was made."""
    return f"medicine-order-{order_id}"


def run() -> int:
    """Make the dispatched order (see the module docstring for the exit status)."""
    kafka = load(KafkaSettings)
    settings = load(MedicineSettings)
    dispatched = dispatched_order(os.environ)
    order = dispatched.order()
    stop = start_service()
    name = maker_name(os.environ)
    # Never subscribes: it only reads and commits the marker group's offset, as a "simple"
    # consumer (generation -1) does, which the classic protocol is made for.
    marker = Consumer(
        consumer_config(kafka, client_id=name, group_id=marker_group(order.order_id))
        | {"group.protocol": "classic"}
    )
    try:
        try:
            # Its transactional id derived from the order id: a retry fences a zombie.
            producer = registered_producer(
                transactional_factory(kafka, name),
                order_transactional_id(order.order_id),
                stop.is_set,
                # A retry ends what its predecessor left open where Kafka lost the markers
                # (sweep.py), before it reads the marker and commits the tabs again.
                # The tabs are keyed by the order id: one partition to sweep, not the topic.
                lambda registered: Sweep(keyed=((kafka.deliveries_topic, order.order_id),))(
                    registered,
                    TopicPartition(dispatched.topic, dispatched.partition),
                    marker.consumer_group_metadata,
                    stop.is_set,
                ),
            )
        except ProducerUnavailable as failure:
            log.error("%s: %s", name, failure)
            return 1
        if producer is None:
            print(f"medicine {name}: stopped before order {order.order_id}", flush=True)
            return 1
        where = TopicPartition(dispatched.topic, dispatched.partition)
        try:
            [committed] = marker.committed([where], timeout=MARKER_TIMEOUT_S)
        except KafkaException as error:
            log.error("%s: cannot read the marker of order %s: %s", name, order.order_id, error)
            return 1
        if committed.offset > dispatched.offset:
            print(f"medicine {name}: order {order.order_id} was already made", flush=True)
            return 0
        print(
            f"medicine {name}: making order {order.order_id} from {dispatched.topic}"
            f"[{dispatched.partition}]@{dispatched.offset}",
            flush=True,
        )
        workshop = Workshop(
            name=name,
            destinations=Destinations(kafka.deliveries_topic, kafka.dlq_topic),
            tab_seconds=settings.tab_seconds,
            group_metadata=marker.consumer_group_metadata,
            stopping=stop.is_set,
            watchdog=Watchdog(name),
        )
        workers = min(order.tabs_count, settings.max_workers)
        line = InFlight((dispatched.topic, dispatched.partition), dispatched.offset, workers, None)
        try:
            outcome = make_in_transaction(
                workshop, lambda: producer, dispatched.record(), order, line
            )
        except MakerFailed as failure:
            log.error("%s: %s", name, failure)
            return 1
    finally:
        marker.close()
    made = outcome is Outcome.MADE
    print(f"medicine {name}: order {order.order_id} {outcome.value}", flush=True)
    return 0 if made else 1
