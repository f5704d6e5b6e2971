"""The ramp format of MEDPUBSUB_RAMP and the reading of Locust's CSV: pure functions, no Locust."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medpubsub.settings import KafkaSettings
from pytest_medpubsub.load import (
    RampError,
    RampStep,
    format_ramp,
    kafka_environment,
    parse_failures_csv,
    parse_ramp,
    parse_stats_csv,
    ramp_duration_s,
    step_at,
)


def test_a_ramp_is_patients_times_seconds_per_step() -> None:
    assert parse_ramp("1x10,5x20,0x5") == (RampStep(1, 10), RampStep(5, 20), RampStep(0, 5))
    assert parse_ramp(" 3X2.5 ") == (RampStep(3, 2.5),)
    assert ramp_duration_s(parse_ramp("1x10,5x20,0x5")) == 35


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("", "is empty"),
        ("5", "step 1 ('5') is not PATIENTSxSECONDS"),
        ("1x10,ax3", "step 2 ('ax3') is not PATIENTSxSECONDS"),
        ("1x10,,0x5", "step 2 ('') is not PATIENTSxSECONDS"),
        ("-1x10", "negative number of patients"),
        ("2x0", "positive number of seconds"),
        ("2xinf", "positive number of seconds"),
        ("2x-1", "positive number of seconds"),
    ],
)
def test_a_bad_ramp_is_one_sentence_naming_the_step(spec: str, complaint: str) -> None:
    with pytest.raises(RampError) as raised:
        parse_ramp(spec)
    message = str(raised.value)
    assert complaint in message
    assert "MEDPUBSUB_RAMP" in message
    assert "\n" not in message


def test_the_step_at_a_moment_and_the_end_of_the_ramp() -> None:
    steps = parse_ramp("1x10,5x20,0x5")
    assert step_at(steps, 0) == RampStep(1, 10)
    assert step_at(steps, 9.99) == RampStep(1, 10)
    assert step_at(steps, 10) == RampStep(5, 20)
    assert step_at(steps, 34.9) == RampStep(0, 5)
    assert step_at(steps, 35) is None


@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(1, 3600)), min_size=1, max_size=10).map(
        lambda pairs: tuple(RampStep(p, float(s)) for p, s in pairs)
    )
)
def test_formatting_and_parsing_a_ramp_round_trip(steps: tuple[RampStep, ...]) -> None:
    assert parse_ramp(format_ramp(steps)) == steps


_STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
)


def test_the_aggregated_row_of_locusts_stats_csv(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats.csv"
    figures = "58,1,4,33.39,1.04,539.15,92.5,2.31,0.04,4,5,6,7,8,520,530,540,540,540,540"
    path.write_text(f"{_STATS_HEADER}kafka,tabs.orders,{figures}\n,Aggregated,{figures}\n")
    stats = parse_stats_csv(path)
    assert (stats.requests, stats.failures) == (58, 1)
    assert (stats.median_ms, stats.p95_ms, stats.p99_ms, stats.max_ms) == (4, 520, 540, 539.15)
    assert stats.requests_per_s == pytest.approx(2.31)


def test_a_run_without_requests_has_no_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats.csv"
    path.write_text(
        _STATS_HEADER
        + ",Aggregated,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
    )
    stats = parse_stats_csv(path)
    assert stats.requests == 0
    assert stats.p95_ms is None
    assert stats.median_ms is None


def test_failures_are_counted_per_error(tmp_path: Path) -> None:
    path = tmp_path / "locust_failures.csv"
    path.write_text(
        "Method,Name,Error,Occurrences\n"
        'kafka,tabs.orders,"KafkaException(KafkaError{code=_MSG_TIMED_OUT})",2\n'
    )
    assert parse_failures_csv(path) == ["2 x KafkaException(KafkaError{code=_MSG_TIMED_OUT})"]
    assert parse_failures_csv(tmp_path / "missing.csv") == []


def test_a_child_reaches_kafka_through_the_medpubsub_variables() -> None:
    kafka = KafkaSettings(kafka_bootstrap="127.0.0.1:9", orders_topic="o", deliveries_topic="d")
    env = kafka_environment(kafka)
    assert env["MEDPUBSUB_KAFKA_BOOTSTRAP"] == "127.0.0.1:9"
    assert env["MEDPUBSUB_ORDERS_TOPIC"] == "o"
    assert env["MEDPUBSUB_DELIVERIES_TOPIC"] == "d"
    assert env["MEDPUBSUB_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "MEDPUBSUB_KAFKA_SASL_PASSWORD" not in env  # unset values stay unset
