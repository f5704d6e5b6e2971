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
        ({"HOSTNAME": "laptop"}, "<host>-<pid>-t0k3n"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "<host>-<pid>-t0k3n"),
        ({}, "<host>-<pid>-t0k3n"),
    ],
)
def test_a_maker_is_named_after_its_pod_in_kubernetes_else_host_pid_and_a_token(
    environ: dict[str, str], expected: str
) -> None:
    # Filled in here, not in the parameters: test ids must not depend on the collecting process.
    here = expected.replace("<host>", socket.gethostname()).replace("<pid>", str(os.getpid()))
    assert maker_name(environ, token="t0k3n") == here


def test_makers_sharing_host_name_and_pid_still_get_distinct_names() -> None:
    # Containers on one host network, each pid 1: only the random token tells them apart, and
    # one transactional id for two makers would fence one of them at start.
    names = {maker_name({}) for _ in range(50)}

    assert len(names) == 50
