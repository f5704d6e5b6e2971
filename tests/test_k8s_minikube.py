"""The minikube backend, proven here by the exact command lines it runs (minikube is not served
on this machine; a machine with Docker runs them for real):

- `minikube start --cpus` fits the machine and its Docker engine (minikube refuses more CPUs than
  it can have, and fewer than 2);
- images are loaded under a content tag, so a reused profile runs the build just made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_medpubsub.platforms import minikube
from pytest_medpubsub.platforms.minikube import MinikubeBackend
from tests.standin_tools import Recorder

PATIENT_ID = "0123456789abcdef" * 4
REBUILT_PATIENT_ID = "ff00000000000000" * 4


@pytest.mark.parametrize(
    ("machine_cpus", "engine_cpus", "cpus"),
    [
        (2, 2, 2),  # this machine: --cpus=4 would be refused
        (8, 8, 4),
        (64, 64, 4),  # not all of them, as --cpus=max would take
        (16, 3, 3),  # Docker Desktop's VM has fewer CPUs than the host
        (3, None, 3),  # the engine did not say
        (None, None, 4),  # nothing known: what the profile wants, minikube checks
        (1, 1, 2),  # minikube's minimum; it then says itself that 1 CPU is too few
        (4, 0, 4),  # a nonsense count is ignored
    ],
)
def test_cpus_fit_the_machine_and_the_engine(
    machine_cpus: int | None, engine_cpus: int | None, cpus: int
) -> None:
    assert minikube.cpus_for(machine_cpus, engine_cpus) == cpus


def test_start_command_line() -> None:
    assert minikube.start_command("medpubsub", 2) == [
        "minikube",
        "start",
        "--profile",
        "medpubsub",
        "--cpus=2",
        "--memory=6g",
    ]
    assert minikube.ENGINE_CPUS_COMMAND == ["docker", "info", "--format", "{{.NCPU}}"]


def test_starting_asks_the_engine_for_its_cpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.setenv("MEDPUBSUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STANDIN_NCPU", "3")
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    backend = MinikubeBackend("medpubsub")
    backend.up()
    assert recorder.calls() == [
        ["minikube", "status", "--profile", "medpubsub", "--output", "json"],
        ["docker", "info", "--format", "{{.NCPU}}"],
        ["minikube", "start", "--profile", "medpubsub", "--cpus=3", "--memory=6g"],
    ]
    assert backend.created  # `minikube status` printed nothing: no profile before
    assert (tmp_path / "cache" / "minikube" / "medpubsub" / "minikube-start.log").exists()


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patient_id: str) -> list[list[str]]:
    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.setenv("STANDIN_ID_patient", patient_id)
    loaded = MinikubeBackend("medpubsub").load_images(["medpubsub/patient:0.1.0"])
    tagged = f"medpubsub/patient:0.1.0-{patient_id[:12]}"
    assert loaded == {"medpubsub/patient:0.1.0": tagged}
    return recorder.calls()


def test_images_are_loaded_under_a_content_tag_then_untagged_in_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load(tmp_path, monkeypatch, PATIENT_ID) == [
        ["docker", "image", "inspect", "--format", "{{.Id}}", "medpubsub/patient:0.1.0"],
        ["docker", "tag", "medpubsub/patient:0.1.0", "medpubsub/patient:0.1.0-0123456789ab"],
        [
            "minikube",
            "--profile",
            "medpubsub",
            "image",
            "load",
            "medpubsub/patient:0.1.0-0123456789ab",
        ],
        ["docker", "image", "rm", "medpubsub/patient:0.1.0-0123456789ab"],
    ]


def test_a_rebuilt_image_reaches_a_reused_profile_under_a_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same tag rebuilt gets another name, so the pods that ran the old build are replaced."""
    first = load(tmp_path / "first", monkeypatch, PATIENT_ID)
    again = load(tmp_path / "again", monkeypatch, PATIENT_ID)
    rebuilt = load(tmp_path / "rebuilt", monkeypatch, REBUILT_PATIENT_ID)
    assert first == again  # an unchanged build keeps its name: nothing rolls
    assert rebuilt[2][-1] == "medpubsub/patient:0.1.0-ff0000000000"
    assert rebuilt[2][-1] != first[2][-1]
