"""The dead letters of a run, read back from the dead-letter topic for its report.

The observer counts dead letters but keeps only when each failed; a reader of a red run wants
the reason, the maker and the record each one came from. Only runs that had dead letters pay for
this read, once, after the run: every partition of the topic from the beginning to its end
(read_committed, no consumer group), kept when it failed since the run's start.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from medpubsub.kafka_clients import reader_config
from medpubsub.messages import DeadLetter
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.client_log import quiet

DEAD_LETTERS_KEY = "dead_letter_records"  # the report.json section
SHOWN = 50
PAYLOAD_SHOWN = 200


@dataclass
class DeadLetters:
    """What was read: the latest `SHOWN` dead letters since the start, and any reading problem."""

    records: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "total": self.total, "error": self.error}


def read_dead_letters(
    kafka: KafkaSettings, since_ns: int | None, timeout_s: float = 20.0
) -> DeadLetters:
    """The dead letters that failed at or after `since_ns`; never raises (the report says why
    it has none when the topic could not be read)."""
    consumer = Consumer(
        quiet(reader_config(kafka, f"medpubsub-report-{uuid.uuid4().hex[:8]}"))
        | {"enable.partition.eof": True}
    )
    try:
        return _read(consumer, kafka.dlq_topic, since_ns or 0, timeout_s)
    except KafkaException as error:
        return DeadLetters(error=f"{kafka.dlq_topic} could not be read: {error}")
    finally:
        consumer.close()


def _read(consumer: Consumer, topic: str, since_ns: int, timeout_s: float) -> DeadLetters:
    metadata = consumer.list_topics(topic, timeout=min(timeout_s, 10.0)).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        return DeadLetters(error=f"{topic} was not found")
    partitions = set(metadata.partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
    at_end: set[int] = set()
    found: list[DeadLetter] = []
    unreadable = 0
    deadline = time.monotonic() + timeout_s
    while at_end != partitions:
        if time.monotonic() > deadline:
            missing = sorted(partitions - at_end)
            return _result(
                found,
                unreadable,
                f"stopped after {timeout_s:g} s: partitions {missing} of {topic} not read to "
                f"their end ({len(found)} dead letters read by then)",
            )
        for message in consumer.consume(500, 0.5):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                    continue
                raise KafkaException(error)
            try:
                letter = DeadLetter.model_validate_json(message.value() or b"")
            except ValidationError:
                unreadable += 1
                continue
            if letter.failed_at_ns >= since_ns:
                found.append(letter)
    return _result(found, unreadable, None)


def _result(found: list[DeadLetter], unreadable: int, error: str | None) -> DeadLetters:
    found.sort(key=lambda letter: letter.failed_at_ns)
    records = [_record(letter) for letter in found[-SHOWN:]]
    if unreadable:
        note = f"{unreadable} records of the topic were not dead letters this version reads"
        error = note if error is None else f"{error}; {note}"
    return DeadLetters(records=records, total=len(found), error=error)


def _record(letter: DeadLetter) -> dict[str, Any]:
    payload = letter.payload
    if len(payload) > PAYLOAD_SHOWN:
        payload = payload[: PAYLOAD_SHOWN - 1] + "…"
    return {
        "failed_at_ns": letter.failed_at_ns,
        "reason": letter.reason,
        "maker": letter.maker,
        "source": f"{letter.topic}[{letter.partition}]@{letter.offset}",
        "payload": ("base64:" if letter.payload_base64 else "") + payload,
    }
