"""A maker's readiness file (MEDICINE_READY_FILE) on a real broker: it lists the partitions the
maker can commit on at once, follows them when a second maker takes some, and is gone at exit.

Warm makers are waited for on it (locally) and on the startup probe it feeds (in a cluster), so a
file written before the partitions are registered, or never rewritten when they move, would let
a run's first orders wait for registrations.
"""

from __future__ import annotations

import signal
from pathlib import Path

from medpubsub.medicine.readiness import read_ready_partitions
from pytest_medpubsub.waiting import wait_until

from .kafka_io import STARTED, ServiceFactory, TestTopics

PARTITIONS = 4


def test_the_readiness_files_cover_every_partition_as_they_move_and_go_at_exit(
    four_partitions: TestTopics, service: ServiceFactory, tmp_path: Path
) -> None:
    topics = four_partitions
    every = {(topics.orders, partition) for partition in range(PARTITIONS)}
    first_file, second_file = tmp_path / "first", tmp_path / "second"
    first = service(
        "medicine",
        topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=120, MEDICINE_READY_FILE=str(first_file)),
    )
    wait_until(
        lambda: read_ready_partitions(first_file),
        lambda listed: listed == every,
        30,
        "the only maker's readiness file to list every partition",
    )

    second = service(
        "medicine",
        topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=120, MEDICINE_READY_FILE=str(second_file)),
    )
    second.wait_for_output(STARTED, timeout_s=30)
    # Both own some (KIP-848's uniform assignor), each lists only its own, together all of them.
    shares = wait_until(
        lambda: (read_ready_partitions(first_file), read_ready_partitions(second_file)),
        lambda seen: bool(seen[0]) and bool(seen[1]) and seen[0] | seen[1] == every,
        30,
        "two makers' readiness files to share every partition",
    )
    assert not shares[0] & shares[1]

    assert first.signal_and_wait(signal.SIGTERM, timeout_s=15) == 0, first.output()
    assert not first_file.exists()
    assert second.signal_and_wait(signal.SIGTERM, timeout_s=15) == 0, second.output()
    assert not second_file.exists()
