"""The services' environment (docs/design.md §2.2): defaults, accepted values, one-line errors."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from medpubsub.settings import (
    ConfigError,
    KafkaSettings,
    MedicineSettings,
    PatientSettings,
    load,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No service setting of the developer's shell reaches these tests."""
    for name in os.environ:
        if name.startswith(("MEDPUBSUB_", "ORBITAL_", "MEDICINE_")):
            monkeypatch.delenv(name)


def test_defaults_are_the_documented_ones() -> None:
    kafka, patient, medicine = load(KafkaSettings), load(PatientSettings), load(MedicineSettings)

    assert kafka.kafka_bootstrap == "localhost:9092"
    assert kafka.kafka_security_protocol == "PLAINTEXT"
    assert (kafka.orders_topic, kafka.deliveries_topic, kafka.dlq_topic) == (
        "tabs.orders",
        "tabs.deliveries",
        "tabs.dlq",
    )
    assert patient.patient_id == socket.gethostname()
    assert (patient.min_tabs_count, patient.max_tabs_count) == (1, 30)
    assert patient.order_period_seconds == 1.0
    assert medicine.group_id == "medicine"
    assert (medicine.max_orders, medicine.tab_seconds, medicine.max_workers) == (1, 2.0, 30)
    assert medicine.idle_timeout_seconds > 0


VALID: list[tuple[type[BaseSettings], dict[str, str], dict[str, Any]]] = [
    (KafkaSettings, {"MEDPUBSUB_KAFKA_BOOTSTRAP": "k:9093"}, {"kafka_bootstrap": "k:9093"}),
    (
        KafkaSettings,
        {
            "MEDPUBSUB_ORDERS_TOPIC": "o",
            "MEDPUBSUB_DELIVERIES_TOPIC": "d",
            "MEDPUBSUB_DLQ_TOPIC": "q",
        },
        {"orders_topic": "o", "deliveries_topic": "d", "dlq_topic": "q"},
    ),
    (
        KafkaSettings,
        {
            "MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "MEDPUBSUB_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "MEDPUBSUB_KAFKA_SASL_USERNAME": "maker",
            "MEDPUBSUB_KAFKA_SASL_PASSWORD": "secret",
            "MEDPUBSUB_KAFKA_SSL_CAFILE": "/etc/ca.crt",
        },
        {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_ssl_cafile": "/etc/ca.crt"},
    ),
    (PatientSettings, {"ORBITAL_PATIENT_ID": "p-1"}, {"patient_id": "p-1"}),
    (
        PatientSettings,
        {"ORBITAL_MIN_TABS_COUNT": "7", "ORBITAL_MAX_TABS_COUNT": "7"},
        {"min_tabs_count": 7, "max_tabs_count": 7},
    ),
    (PatientSettings, {"ORBITAL_ORDER_PERIOD_SECONDS": "0.2"}, {"order_period_seconds": 0.2}),
    (MedicineSettings, {"MEDICINE_GROUP_ID": "g"}, {"group_id": "g"}),
    (MedicineSettings, {"MEDICINE_MAX_ORDERS": "0"}, {"max_orders": 0}),  # 0 = no limit
    (MedicineSettings, {"MEDICINE_IDLE_TIMEOUT_SECONDS": "2.5"}, {"idle_timeout_seconds": 2.5}),
    (MedicineSettings, {"MEDICINE_TAB_SECONDS": "2"}, {"tab_seconds": 2.0}),
    (MedicineSettings, {"MEDICINE_TAB_SECONDS": "3.25"}, {"tab_seconds": 3.25}),
    (MedicineSettings, {"MEDICINE_MAX_WORKERS": "1"}, {"max_workers": 1}),
    (MedicineSettings, {"MEDICINE_MAX_WORKERS": "120"}, {"max_workers": 120}),
    (MedicineSettings, {"MEDICINE_MAX_ORDERS_IN_FLIGHT": "1"}, {"max_orders_in_flight": 1}),
    (MedicineSettings, {"MEDICINE_WARM_MAKERS": "2"}, {"warm_makers": 2}),
    (MedicineSettings, {"MEDICINE_WARM_SECONDS": "600"}, {"warm_seconds": 600.0}),
]


@pytest.mark.parametrize(
    ("settings_class", "environment", "expected"),
    VALID,
    ids=[",".join(environment) for _, environment, _ in VALID],
)
def test_a_valid_value_is_read(
    monkeypatch: pytest.MonkeyPatch,
    settings_class: type[BaseSettings],
    environment: dict[str, str],
    expected: dict[str, Any],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = load(settings_class)

    assert {field: getattr(settings, field) for field in expected} == expected


INVALID: list[tuple[type[BaseSettings], dict[str, str], str]] = [
    (KafkaSettings, {"MEDPUBSUB_KAFKA_BOOTSTRAP": ""}, "MEDPUBSUB_KAFKA_BOOTSTRAP=''"),
    (
        KafkaSettings,
        {"MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": "TLS"},
        "MEDPUBSUB_KAFKA_SECURITY_PROTOCOL='TLS'",
    ),
    (KafkaSettings, {"MEDPUBSUB_KAFKA_SASL_MECHANISM": "GSSAPI"}, "MEDPUBSUB_KAFKA_SASL_MECHANISM"),
    (
        KafkaSettings,
        {"MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
        "SASL needs MEDPUBSUB_KAFKA_SASL_MECHANISM",
    ),
    (KafkaSettings, {"MEDPUBSUB_ORDERS_TOPIC": ""}, "MEDPUBSUB_ORDERS_TOPIC=''"),
    (PatientSettings, {"ORBITAL_PATIENT_ID": ""}, "ORBITAL_PATIENT_ID=''"),
    (PatientSettings, {"ORBITAL_MIN_TABS_COUNT": "0"}, "ORBITAL_MIN_TABS_COUNT='0'"),
    (PatientSettings, {"ORBITAL_MAX_TABS_COUNT": "31"}, "ORBITAL_MAX_TABS_COUNT='31'"),
    (PatientSettings, {"ORBITAL_MAX_TABS_COUNT": "ten"}, "ORBITAL_MAX_TABS_COUNT='ten'"),
    (PatientSettings, {"ORBITAL_MAX_TABS_COUNT": "2.5"}, "ORBITAL_MAX_TABS_COUNT='2.5'"),
    (
        PatientSettings,
        {"ORBITAL_MIN_TABS_COUNT": "9", "ORBITAL_MAX_TABS_COUNT": "8"},
        "ORBITAL_MIN_TABS_COUNT (9) must not exceed ORBITAL_MAX_TABS_COUNT (8)",
    ),
    (PatientSettings, {"ORBITAL_ORDER_PERIOD_SECONDS": "0"}, "ORBITAL_ORDER_PERIOD_SECONDS='0'"),
    (PatientSettings, {"ORBITAL_ORDER_PERIOD_SECONDS": "-1"}, "ORBITAL_ORDER_PERIOD_SECONDS"),
    (PatientSettings, {"ORBITAL_ORDER_PERIOD_SECONDS": "inf"}, "ORBITAL_ORDER_PERIOD_SECONDS"),
    (PatientSettings, {"ORBITAL_ORDER_PERIOD_SECONDS": "nan"}, "ORBITAL_ORDER_PERIOD_SECONDS"),
    (MedicineSettings, {"MEDICINE_TAB_SECONDS": "1.5"}, "MEDICINE_TAB_SECONDS='1.5'"),
    (MedicineSettings, {"MEDICINE_TAB_SECONDS": "1.999"}, "greater than or equal to 2"),
    (MedicineSettings, {"MEDICINE_TAB_SECONDS": "two"}, "MEDICINE_TAB_SECONDS='two'"),
    (MedicineSettings, {"MEDICINE_MAX_ORDERS": "-1"}, "MEDICINE_MAX_ORDERS='-1'"),
    (MedicineSettings, {"MEDICINE_MAX_ORDERS": "many"}, "MEDICINE_MAX_ORDERS='many'"),
    (MedicineSettings, {"MEDICINE_IDLE_TIMEOUT_SECONDS": "0"}, "MEDICINE_IDLE_TIMEOUT_SECONDS"),
    (MedicineSettings, {"MEDICINE_MAX_WORKERS": "0"}, "MEDICINE_MAX_WORKERS='0'"),
    (MedicineSettings, {"MEDICINE_MAX_WORKERS": "1001"}, "MEDICINE_MAX_WORKERS='1001'"),
    (MedicineSettings, {"MEDICINE_WARM_MAKERS": "-1"}, "MEDICINE_WARM_MAKERS='-1'"),
    (MedicineSettings, {"MEDICINE_WARM_SECONDS": "0"}, "MEDICINE_WARM_SECONDS='0'"),
    (
        MedicineSettings,
        {"MEDICINE_MAX_ORDERS_IN_FLIGHT": "-1"},
        "MEDICINE_MAX_ORDERS_IN_FLIGHT='-1'",
    ),
    (MedicineSettings, {"MEDICINE_GROUP_ID": ""}, "MEDICINE_GROUP_ID=''"),
]


@pytest.mark.parametrize(
    ("settings_class", "environment", "message"),
    INVALID,
    ids=[
        f"{','.join(environment)}={'/'.join(environment.values())}" for _, environment, _ in INVALID
    ],
)
def test_an_invalid_value_is_one_sentence_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    settings_class: type[BaseSettings],
    environment: dict[str, str],
    message: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as raised:
        load(settings_class)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert raised.value.__cause__ is None  # `from None`: no chained traceback for the operator


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDICINE_TAB_SECONDS", "1")
    monkeypatch.setenv("MEDICINE_MAX_WORKERS", "0")

    with pytest.raises(ConfigError) as raised:
        load(MedicineSettings)

    assert "MEDICINE_TAB_SECONDS='1'" in str(raised.value)
    assert "MEDICINE_MAX_WORKERS='0'" in str(raised.value)
