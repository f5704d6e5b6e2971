"""A maker run by a test's own loop, on a real broker: each step is one turn of the service's.

The tests that hold a moment of a hand-over (ownership, leaving) drive the maker themselves, so
that they can stop its polling, assign its partitions or close it exactly when they mean to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer

from medpubsub.kafka_clients import consumer_config
from medpubsub.medicine.maker import Destinations, Maker
from medpubsub.medicine.producers import PartitionProducers, transactional_factory

from .kafka_io import TestTopics


@dataclass
class InProcessMaker:
    """A maker run by the test's own loop: the test assigns its consumer partitions, or subscribes
    it (`maker.subscribe`)."""

    name: str
    consumer: Consumer
    maker: Maker
    producers: PartitionProducers

    def step(self) -> tuple[int, int, str | None]:
        """One turn of the service's loop: (orders in flight, made, failure) afterwards.

        A maker that failed does nothing more, as the service exits then.
        """
        self.maker.tick()
        if self.maker.failure is not None:
            return self.maker.in_flight, self.maker.tally.made, self.maker.failure
        record = self.consumer.poll(0.05)
        if record is not None and record.error() is None:
            self.maker.offer(record)
        return self.maker.in_flight, self.maker.tally.made, self.maker.failure


def in_process_maker(
    topics: TestTopics,
    name: str,
    tab_seconds: float,
    before_registering: Callable[[], object] = lambda: None,
) -> InProcessMaker:
    make_producer = transactional_factory(topics.kafka, name)

    def registering(transactional_id: str) -> Producer:
        before_registering()
        return make_producer(transactional_id)

    consumer = Consumer(
        consumer_config(topics.kafka, client_id=name, group_id=topics.group)
        | {"auto.offset.reset": "error"}
    )
    producers = PartitionProducers(
        registering, topics.group, stopping=lambda: False, sweep=topics.sweep
    )
    maker = Maker(
        name,
        consumer=consumer,
        producers=producers,
        destinations=Destinations(topics.deliveries, topics.dlq),
        tab_seconds=tab_seconds,
        max_workers=30,
        stopping=lambda: False,
    )
    return InProcessMaker(name, consumer, maker, producers)
