"""The message contract (docs/design.md §2.1): what parses as an order, what is rejected and why."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from medpubsub.messages import (
    MAX_TABS,
    DeadLetter,
    Order,
    Rejection,
    SeedOrder,
    Tab,
    dead_letter_payload,
    parse_order,
)

ORDER_ID = "0b7ad2b6-8f7c-4c4e-9d51-3a0f4c3f1e2a"
TOPIC = "tabs.orders"


def order_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "order_id": ORDER_ID,
        "patient_id": "patient-1",
        "tabs_count": 5,
        "ordered_at_ns": 1_700_000_000_000_000_000,
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not ...}


def encoded(document: object) -> bytes:
    return json.dumps(document).encode()


def parse(value: bytes | None, offset: int = 7) -> Order | Rejection:
    return parse_order(value, TOPIC, 2, offset)


def test_a_current_order_parses_as_itself() -> None:
    assert parse(encoded(order_document())) == Order(**order_document())


@pytest.mark.parametrize("tabs_count", [1, 15, MAX_TABS])
def test_every_tab_count_in_range_is_accepted(tabs_count: int) -> None:
    parsed = parse(encoded(order_document(tabs_count=tabs_count)))

    assert isinstance(parsed, Order)
    assert parsed.tabs_count == tabs_count


def test_a_seed_order_gets_an_id_derived_from_its_coordinates() -> None:
    seed = SeedOrder(patient_id="seed-1", tabs_count=4, order_timestamp_ns=99)

    first = parse(seed.to_bytes(), offset=7)
    again = parse(seed.to_bytes(), offset=7)
    elsewhere = parse(seed.to_bytes(), offset=8)

    assert isinstance(first, Order)
    assert isinstance(elsewhere, Order)
    assert first == again  # the same record made twice gives the same tab ids
    assert first.order_id != elsewhere.order_id
    assert uuid.UUID(first.order_id).version == 5
    assert (first.patient_id, first.tabs_count, first.ordered_at_ns) == ("seed-1", 4, 99)
    assert first == seed.to_order(TOPIC, 2, 7)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record (no value)"),
        (b"\xff\xfe", "not UTF-8: invalid start byte at byte 0"),
        (b"abc\xc3", "not UTF-8: unexpected end of data at byte 3"),
        (b"", "not JSON"),
        (b"{nope", "not JSON"),
        (b"[" * 100_000, "not JSON"),  # nested too deep for the parser
        (b"[1, 2]", "not a JSON object but list"),
        (b"42", "not a JSON object but int"),
        (b'"order"', "not a JSON object but str"),
        (b"null", "not a JSON object but NoneType"),
        (encoded(order_document(order_id=...)), "invalid order: order_id: Field required"),
        (encoded(order_document(order_id="42")), "order_id: Value error, order_id must be a UUID"),
        (encoded(order_document(patient_id="")), "patient_id: String should have at least 1"),
        (encoded(order_document(tabs_count="5")), "tabs_count: Input should be a valid integer"),
        (encoded(order_document(tabs_count=5.0)), "tabs_count: Input should be a valid integer"),
        (encoded(order_document(tabs_count=True)), "tabs_count: Input should be a valid integer"),
        (encoded(order_document(tabs_count=0)), "tabs_count: Input should be greater than or"),
        (encoded(order_document(tabs_count=31)), "tabs_count: Input should be less than or"),
        (encoded(order_document(ordered_at_ns=-1)), "ordered_at_ns: Input should be greater"),
        (encoded(order_document(colour="red")), "colour: Extra inputs are not permitted"),
        (
            encoded(order_document(tabs_count=..., order_id=..., order_timestamp_ns=1)),
            "invalid seed order: tabs_count: Field required",
        ),
        (
            encoded({"patient_id": "s", "tabs_count": 31, "order_timestamp_ns": 1}),
            "invalid seed order: tabs_count: Input should be less than or equal to 30",
        ),
        (
            encoded(order_document(order_timestamp_ns=1)),  # both shapes at once: not a seed
            "invalid order: order_timestamp_ns: Extra inputs are not permitted",
        ),
    ],
)
def test_a_record_that_is_not_an_order_is_rejected_with_a_reason(
    value: bytes | None, reason: str
) -> None:
    parsed = parse(value)

    assert isinstance(parsed, Rejection)
    assert reason in parsed.reason
    assert "\n" not in parsed.reason


def test_a_rejection_lists_every_problem_on_one_line() -> None:
    parsed = parse(encoded({"order_id": "x", "tabs_count": 99}))

    assert isinstance(parsed, Rejection)
    for field in ("order_id", "patient_id", "tabs_count", "ordered_at_ns"):
        assert f"{field}: " in parsed.reason
    assert parsed.reason.count("; ") == 3


def test_a_tab_carries_its_order_and_an_id_made_of_order_id_and_index() -> None:
    order = Order(**order_document())

    tab = Tab.made(order, index=4, made_at_ns=2_000, maker="maker-1")

    assert tab.tab_id == f"{ORDER_ID}:4" == Tab.tab_id_for(ORDER_ID, 4)
    assert (tab.order_id, tab.patient_id, tab.tabs_count) == (ORDER_ID, "patient-1", 5)
    assert (tab.index, tab.ordered_at_ns, tab.made_at_ns, tab.maker) == (
        4,
        order.ordered_at_ns,
        2_000,
        "maker-1",
    )
    assert Tab.model_validate_json(tab.to_bytes()) == tab


@pytest.mark.parametrize("index", [-1, MAX_TABS])
def test_a_tab_index_outside_the_order_is_refused(index: int) -> None:
    with pytest.raises(ValidationError, match="index"):
        Tab.made(Order(**order_document()), index=index, made_at_ns=0, maker="m")


def test_messages_are_compact_utf8_json_and_immutable() -> None:
    order = Order(**order_document(patient_id="patiënt"))

    assert json.loads(order.to_bytes().decode("utf-8")) == order_document(patient_id="patiënt")
    with pytest.raises(ValidationError, match="frozen"):
        setattr(order, "tabs_count", 6)  # noqa: B010 - the assignment itself is under test


@pytest.mark.parametrize(
    ("value", "payload", "is_base64"),
    [
        (None, "", False),
        (b"", "", False),
        (b"{bad json", "{bad json", False),
        (b"\xff", "/w==", True),
    ],
)
def test_a_dead_letter_keeps_the_payload_as_text_or_flagged_base64(
    value: bytes | None, payload: str, is_base64: bool
) -> None:
    assert dead_letter_payload(value) == (payload, is_base64)


def test_a_dead_letter_round_trips() -> None:
    letter = DeadLetter(
        reason="not JSON",
        topic=TOPIC,
        partition=1,
        offset=42,
        payload="/w==",
        payload_base64=True,
        failed_at_ns=5,
        maker="maker-1",
    )

    assert DeadLetter.model_validate_json(letter.to_bytes()) == letter


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
order_like = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.one_of(st.uuids().map(str), json_values),
        "patient_id": st.one_of(st.text(), json_values),
        "tabs_count": st.one_of(st.integers(-5, 40), json_values),
        "ordered_at_ns": st.one_of(st.integers(-(2**70), 2**70), json_values),
        "order_timestamp_ns": st.one_of(st.integers(), json_values),
        "extra": json_values,
    },
)


@given(st.one_of(st.none(), st.binary(), json_values.map(encoded), order_like.map(encoded)))
def test_any_record_is_an_order_or_a_rejection_never_an_exception(value: bytes | None) -> None:
    parsed = parse(value)

    assert isinstance(parsed, Order | Rejection)
    if isinstance(parsed, Rejection):
        assert parsed.reason


@given(
    st.builds(
        Order,
        order_id=st.uuids().map(str),
        patient_id=st.text(min_size=1),
        tabs_count=st.integers(1, MAX_TABS),
        ordered_at_ns=st.integers(0, 2**63),
    )
)
def test_every_valid_order_survives_the_wire(order: Order) -> None:
    assert parse(order.to_bytes()) == order
