"""A bad variable stops a service before it touches Kafka: one line naming it, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .kafka_io import service_environment

# Nothing listens here: a service that got past its settings would hang or fail differently.
UNREACHABLE = {"MEDPUBSUB_KAFKA_BOOTSTRAP": "127.0.0.1:9"}

CASES: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("medicine", {"MEDICINE_TAB_SECONDS": "1.5"}, ("MEDICINE_TAB_SECONDS='1.5'", "2")),
    ("medicine", {"MEDICINE_TAB_SECONDS": "slow"}, ("MEDICINE_TAB_SECONDS='slow'",)),
    ("medicine", {"MEDICINE_MAX_WORKERS": "0"}, ("MEDICINE_MAX_WORKERS='0'",)),
    ("medicine", {"MEDICINE_MAX_WORKERS": "1001"}, ("MEDICINE_MAX_WORKERS='1001'",)),
    ("medicine", {"MEDICINE_MAX_ORDERS": "-1"}, ("MEDICINE_MAX_ORDERS='-1'",)),
    ("medicine", {"MEDICINE_IDLE_TIMEOUT_SECONDS": "0"}, ("MEDICINE_IDLE_TIMEOUT_SECONDS='0'",)),
    ("patient", {"ORBITAL_MAX_TABS_COUNT": "31"}, ("ORBITAL_MAX_TABS_COUNT='31'", "30")),
    ("patient", {"ORBITAL_MIN_TABS_COUNT": "0"}, ("ORBITAL_MIN_TABS_COUNT='0'",)),
    (
        "patient",
        {"ORBITAL_MIN_TABS_COUNT": "5", "ORBITAL_MAX_TABS_COUNT": "4"},
        ("ORBITAL_MIN_TABS_COUNT (5)", "ORBITAL_MAX_TABS_COUNT (4)"),
    ),
    ("patient", {"ORBITAL_ORDER_PERIOD_SECONDS": "often"}, ("ORBITAL_ORDER_PERIOD_SECONDS",)),
    ("patient", {"ORBITAL_ORDER_PERIOD_SECONDS": "0"}, ("ORBITAL_ORDER_PERIOD_SECONDS='0'",)),
    (
        "patient",
        {"MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": "TLS"},
        ("MEDPUBSUB_KAFKA_SECURITY_PROTOCOL",),
    ),
    (
        "medicine",
        {"MEDPUBSUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
        ("MEDPUBSUB_KAFKA_SASL_USERNAME",),
    ),
]


@pytest.mark.parametrize(
    ("command", "settings", "mentions"),
    CASES,
    ids=[f"{command}-{'-'.join(settings)}" for command, settings, _ in CASES],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_status_2(
    command: str, settings: dict[str, str], mentions: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medpubsub", command],
        env=service_environment(UNREACHABLE | settings),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"medpubsub {command}: ")
    for mention in mentions:
        assert mention in lines[0]
    assert "Traceback" not in result.stderr
