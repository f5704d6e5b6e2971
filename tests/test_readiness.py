"""What waiting for warm makers accepts: the readiness file's content, Ready pods, and the local
platform's rule (every partition owned and registered, by at least the warm makers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medpubsub.medicine.readiness import ReadinessFile, read_ready_partitions
from pytest_medpubsub.kafka.group import GroupAssignment
from pytest_medpubsub.platforms.local import WarmMakers
from pytest_medpubsub.platforms.status import ready_pods


def test_the_file_lists_the_partitions_and_goes_when_none_are_ready(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    readiness = ReadinessFile(path)
    readiness.update([("tabs.orders", 0), ("tabs.orders", 11)])
    assert path.read_text() == "tabs.orders 0\ntabs.orders 11\n"
    assert read_ready_partitions(path) == {("tabs.orders", 0), ("tabs.orders", 11)}
    readiness.update([("tabs.orders", 11)])
    assert read_ready_partitions(path) == {("tabs.orders", 11)}
    readiness.update([])
    assert not path.exists()
    assert read_ready_partitions(path) == set()
    assert list(tmp_path.iterdir()) == []  # no staged copy left behind


def test_a_stale_file_is_removed_by_the_first_update(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    path.write_text("tabs.orders 3\n")
    ReadinessFile(path).clear()
    assert not path.exists()


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    ReadinessFile(None).update([("tabs.orders", 0)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("members", "assigned", "partitions", "ready", "serving"),
    [
        (2, 40, 40, 40, True),
        (3, 40, 40, 40, True),  # a third maker joined: still served at once
        (2, 40, 40, 39, False),  # one partition still registering
        (1, 40, 40, 40, False),  # fewer makers than the warm floor (2)
        (2, 38, 40, 38, False),  # two partitions with no owner yet
        (0, 0, 0, 0, False),  # the topic is not there yet
    ],
)
def test_two_warm_makers_serve_once_every_partition_is_owned_and_registered(
    members: int, assigned: int, partitions: int, ready: int, serving: bool
) -> None:
    seen = WarmMakers(GroupAssignment(members, assigned, partitions), ready)
    assert seen.serving(warm=2) is serving


def pod(name: str, phase: str, ready: str | None, deleting: bool = False) -> dict[str, object]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    metadata: dict[str, object] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:03:00Z"
    return {"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}


def test_only_running_pods_whose_ready_condition_is_true_count() -> None:
    pods = [
        pod("registered", "Running", "True"),
        pod("registering", "Running", "False"),
        pod("starting", "Pending", None),
        pod("leaving", "Running", "True", deleting=True),
        pod("done", "Succeeded", "False"),
    ]
    assert ready_pods(pods) == ["registered"]
