"""The message contract between patients, makers and the harness (docs/design.md §2.1).

Every model is strict: a producer that sends `"tabs_count": "5"` or `5.0` has broken the contract,
and the order goes to the dead-letter topic instead of being guessed at.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MIN_TABS = 1
MAX_TABS = 30

# Seed orders carry no id; one is derived from where the order sits in Kafka, so a maker that
# makes the same record again (after a crash) gives the tabs the same ids: duplicates show.
_SEED_ORDER_NAMESPACE = uuid.UUID("5b8e8f5e-3f57-4d7c-9d43-7a4c3a0d2b11")

TabsCount = Annotated[int, Field(ge=MIN_TABS, le=MAX_TABS)]
Nanoseconds = Annotated[int, Field(ge=0)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class Order(_Message):
    """An order for `tabs_count` tabs, keyed by patient id on `tabs.orders`."""

    order_id: NonEmpty
    patient_id: NonEmpty
    tabs_count: TabsCount
    ordered_at_ns: Nanoseconds

    @field_validator("order_id")
    @classmethod
    def _order_id_is_a_uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("order_id must be a UUID string") from None
        return value


class SeedOrder(_Message):
    """The payload the original seed patients published: no order id, another timestamp name."""

    patient_id: NonEmpty
    tabs_count: TabsCount
    order_timestamp_ns: Nanoseconds

    def to_order(self, topic: str, partition: int, offset: int) -> Order:
        order_id = uuid.uuid5(_SEED_ORDER_NAMESPACE, f"{topic}/{partition}/{offset}")
        return Order(
            order_id=str(order_id),
            patient_id=self.patient_id,
            tabs_count=self.tabs_count,
            ordered_at_ns=self.order_timestamp_ns,
        )


class Tab(_Message):
    """One made tab, keyed by order id on `tabs.deliveries`."""

    tab_id: NonEmpty
    order_id: NonEmpty
    patient_id: NonEmpty
    index: Annotated[int, Field(ge=0, lt=MAX_TABS)]
    tabs_count: TabsCount
    ordered_at_ns: Nanoseconds
    made_at_ns: Nanoseconds
    maker: NonEmpty

    @staticmethod
    def tab_id_for(order_id: str, index: int) -> str:
        return f"{order_id}:{index}"

    @classmethod
    def made(cls, order: Order, index: int, made_at_ns: int, maker: str) -> Tab:
        return cls(
            tab_id=cls.tab_id_for(order.order_id, index),
            order_id=order.order_id,
            patient_id=order.patient_id,
            index=index,
            tabs_count=order.tabs_count,
            ordered_at_ns=order.ordered_at_ns,
            made_at_ns=made_at_ns,
            maker=maker,
        )


class DeadLetter(_Message):
    """An order that could not be made, with where it came from so it can be found and replayed."""

    reason: NonEmpty
    topic: str
    partition: int
    offset: int
    payload: str
    payload_base64: bool = False
    failed_at_ns: Nanoseconds
    maker: NonEmpty

    @classmethod
    def of_record(
        cls,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        *,
        reason: str,
        maker: str,
    ) -> DeadLetter:
        """The dead letter of the record at topic[partition]@offset, failed now."""
        payload, is_base64 = dead_letter_payload(value)
        return cls(
            reason=reason,
            topic=topic,
            partition=partition,
            offset=offset,
            payload=payload,
            payload_base64=is_base64,
            failed_at_ns=time.time_ns(),
            maker=maker,
        )


@dataclass(frozen=True)
class Rejection:
    """Why a record is not an order; becomes a dead letter."""

    reason: str


def parse_order(value: bytes | None, topic: str, partition: int, offset: int) -> Order | Rejection:
    """Turn any record value into an order or a rejection; never raises.

    Both the current payload and the seed payload are accepted; the shape is chosen by the keys
    present so that a broken current order is reported against the current schema.
    """
    if value is None:
        return Rejection("empty record (no value)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(f"not UTF-8: {error.reason} at byte {error.start}")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        return Rejection(f"not JSON: {error}")
    if not isinstance(document, dict):
        return Rejection(f"not a JSON object but {type(document).__name__}")
    is_seed = "order_id" not in document and "order_timestamp_ns" in document
    try:
        if is_seed:
            return SeedOrder.model_validate(document).to_order(topic, partition, offset)
        return Order.model_validate(document)
    except ValidationError as error:
        return Rejection(f"invalid {'seed ' if is_seed else ''}order: {describe_errors(error)}")


def describe_errors(error: ValidationError) -> str:
    """One line for all of a validation's errors: `tabs_count: must be ≤ 30; order_id: missing`."""
    parts = []
    for detail in error.errors(include_url=False):
        where = ".".join(str(part) for part in detail["loc"]) or "value"
        parts.append(f"{where}: {detail['msg']}")
    return "; ".join(parts)


def dead_letter_payload(value: bytes | None) -> tuple[str, bool]:
    """The record's value as text, or as base64 with the flag set when it is not UTF-8."""
    if value is None:
        return "", False
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), True
