"""The maker's name (its transactional id) and its transaction timeout."""

from __future__ import annotations

import os
import socket

import pytest

from medpubsub.medicine.service import maker_name


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOSTNAME": "medicine-x7k2p-abcde"},
            "medicine-x7k2p-abcde",
        ),
        ({"HOSTNAME": "laptop"}, f"{socket.gethostname()}-{os.getpid()}-t0k3n"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, f"{socket.gethostname()}-{os.getpid()}-t0k3n"),
        ({}, f"{socket.gethostname()}-{os.getpid()}-t0k3n"),
    ],
)
def test_a_maker_is_named_after_its_pod_in_kubernetes_else_host_pid_and_a_token(
    environ: dict[str, str], expected: str
) -> None:
    assert maker_name(environ, token="t0k3n") == expected


def test_makers_sharing_host_name_and_pid_still_get_distinct_names() -> None:
    # Containers on one host network, each pid 1: only the random token tells them apart, and
    # one transactional id for two makers would fence one of them at start.
    names = {maker_name({}) for _ in range(50)}

    assert len(names) == 50
