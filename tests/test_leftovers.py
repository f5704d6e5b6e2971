"""The leftover check after a run: a process is the run's by its run id whatever its command
line, by its command line when it carries no run id (the dispatcher and the makers it starts
included), and never when it carries another run's id."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_medpubsub import leftovers, processes
from tests.conftest import PROJECT, Spawn

RUN = processes.run_id()


@pytest.mark.parametrize(
    ("environment", "command", "run", "in_checkout", "expected"),
    [
        ({processes.RUN_ID: "r1"}, "java -cp x kafka.Kafka", "r1", False, True),
        ({processes.RUN_ID: "r1"}, "anything at all", "r1", True, True),
        ({processes.RUN_ID: "r2"}, "python -m medpubsub medicine", "r1", True, False),
        ({processes.RUN_ID: "r2"}, "anything at all", None, False, True),
        ({}, "python -m medpubsub dispatcher", "r1", True, True),
        ({}, "python -m medpubsub make-order", "r1", True, True),
        ({}, "python -m medpubsub make-order", "r1", False, False),  # another checkout's
        ({}, ".venv/bin/medpubsub up --patients 2", "r1", True, True),
        ({}, "java -cp /c/medpubsub/kafka-4.3.1/libs/* kafka.Kafka s.properties", "r1", True, True),
        ({}, "java -cp /elsewhere/* kafka.Kafka s.properties", "r1", True, False),
        ({}, "vim medpubsub.md", "r1", True, False),
        (None, "python -m medpubsub patient", "r1", True, True),
        (None, "bash", "r1", True, False),
    ],
)
def test_which_processes_belong_to_a_run(
    environment: dict[str, str] | None,
    command: str,
    run: str | None,
    in_checkout: bool,
    expected: bool,
) -> None:
    assert leftovers.belongs(environment, command, run, in_checkout) is expected


def pids(run: str | None) -> set[int]:
    return {pid for pid, _ in leftovers.leftovers(run, checkout=PROJECT)}


def test_a_process_of_the_run_is_found_by_its_run_id_whatever_its_command_line(
    spawned: Spawn,
) -> None:
    process = spawned("nothing", "like", "a", "service")
    assert processes.environment_of(process.pid) is not None
    assert process.pid in pids(RUN)
    processes.stop(process)
    assert process.pid not in pids(RUN)


@pytest.mark.parametrize("service", ["dispatcher", "make-order", "medicine", "patient"])
def test_a_service_without_a_run_id_is_found_by_its_command_line(
    spawned: Spawn, service: str
) -> None:
    environment = {k: v for k, v in os.environ.items() if k != processes.RUN_ID}
    process = spawned("medpubsub", service, env=environment)
    assert process.pid in pids(RUN)


def test_another_runs_process_is_not_ours(spawned: Spawn) -> None:
    other = {**os.environ, processes.RUN_ID: "another-run"}
    process = spawned("medpubsub", "medicine", env=other)
    assert process.pid not in pids(RUN)
    assert process.pid in pids(None)


def test_the_command_fails_listing_a_leftover(spawned: Spawn) -> None:
    process = spawned("left", "behind")
    result = subprocess.run(
        [sys.executable, "-m", "pytest_medpubsub.leftovers"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert f"{process.pid}: " in result.stderr
    assert "left behind" in result.stderr
