"""The maker's name (its transactional id) and its transaction timeout."""

from __future__ import annotations

import os
import socket

import pytest

from medpubsub.medicine.service import maker_name, transaction_timeout_ms
from medpubsub.settings import MedicineSettings


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOSTNAME": "medicine-x7k2p-abcde"},
            "medicine-x7k2p-abcde",
        ),
        ({"HOSTNAME": "laptop"}, f"{socket.gethostname()}-{os.getpid()}"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, f"{socket.gethostname()}-{os.getpid()}"),
        ({}, f"{socket.gethostname()}-{os.getpid()}"),
    ],
)
def test_a_maker_is_named_after_its_pod_in_kubernetes_else_host_and_pid(
    environ: dict[str, str], expected: str
) -> None:
    assert maker_name(environ) == expected


@pytest.mark.parametrize(
    ("tab_seconds", "max_workers", "timeout_ms"),
    [
        (2.0, 30, 10_000),  # one wave of 2 s, plus margin, is under the 10 s floor
        (2.0, 15, 12_000),  # two waves
        (2.0, 1, 68_000),  # thirty waves
        (5.0, 30, 13_000),
    ],
)
def test_the_transaction_outlasts_the_largest_order(
    tab_seconds: float, max_workers: int, timeout_ms: int
) -> None:
    settings = MedicineSettings(tab_seconds=tab_seconds, max_workers=max_workers)

    assert transaction_timeout_ms(settings) == timeout_ms
