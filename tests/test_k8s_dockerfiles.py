"""Offline proof of the service images, each a stage of `system/Dockerfile`: pinned base, non-root
numeric user, only the services' runtime packages, only `system/`, and every module the service
imports present in the image. Each rule is shown to fail on a Dockerfile broken on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_medpubsub.k8s.dockerfiles import (
    SERVICES,
    default_base_image,
    dockerfile_findings,
    image_subject,
    parse,
    target_instructions,
)

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_dockerfiles_pass(service: str) -> None:
    assert [str(f) for f in dockerfile_findings(PROJECT, service)] == []


def test_the_official_base_is_the_default_of_the_base_argument() -> None:
    assert default_base_image(PROJECT) == "python:3.11.13-slim-bookworm"


STAGES = """ARG BASE_IMAGE=python:3.11
FROM ${BASE_IMAGE} AS runtime
RUN shared
FROM runtime AS patient
USER 1
FROM runtime AS medicine
USER 2
FROM medicine AS dispatcher
USER 3
"""


@pytest.mark.parametrize(
    ("target", "keywords"),
    [
        ("runtime", ["ARG", "FROM", "RUN"]),
        ("patient", ["ARG", "FROM", "RUN", "FROM", "USER 1"]),
        ("medicine", ["ARG", "FROM", "RUN", "FROM", "USER 2"]),
        ("dispatcher", ["ARG", "FROM", "RUN", "FROM", "USER 2", "FROM", "USER 3"]),
        ("nurse", None),
    ],
)
def test_an_image_is_the_global_arguments_and_its_chain_of_stages(
    target: str, keywords: list[str] | None
) -> None:
    chain = target_instructions(parse(STAGES), target)
    seen = (
        None
        if chain is None
        else [i.keyword if i.keyword != "USER" else f"USER {i.arguments}" for i in chain]
    )
    assert seen == keywords


def test_stages_that_name_each_other_are_no_chain() -> None:
    looping = "FROM b AS a\nUSER 1\nFROM a AS b\nUSER 2\n"
    assert target_instructions(parse(looping), "a") is None


def test_continuation_lines_and_comments_are_one_instruction() -> None:
    instructions = parse("FROM a:1\n# note\nRUN pip install \\\n  # inline\n  x==1\nUSER 1\n")
    assert [(i.keyword, i.arguments) for i in instructions] == [
        ("FROM", "a:1"),
        ("RUN", "pip install x==1"),
        ("USER", "1"),
    ]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the build context (system/) whose Dockerfile a test may break."""
    shutil.copytree(
        PROJECT / "system", tmp_path / "system", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def break_patient(checkout: Path, old: str, new: str) -> str:
    """Replace the first `old` (the shared stage's, else the patient's: it comes first)."""
    dockerfile = checkout / "system/Dockerfile"
    text = dockerfile.read_text()
    assert old in text, f"the Dockerfile no longer contains {old!r}"
    dockerfile.write_text(text.replace(old, new, 1))
    return image_subject("patient")


BROKEN = [
    ("latest-base", "BASE_IMAGE=python:3.11.13-slim-bookworm", "BASE_IMAGE=python:latest",
     "dockerfile.from"),
    ("untagged-base", "BASE_IMAGE=python:3.11.13-slim-bookworm", "BASE_IMAGE=python",
     "dockerfile.from"),
    ("version-less-tag", "BASE_IMAGE=python:3.11.13-slim-bookworm", "BASE_IMAGE=python:slim",
     "dockerfile.from"),
    ("no-default-base", "ARG BASE_IMAGE=python:3.11.13-slim-bookworm", "ARG BASE_IMAGE",
     "dockerfile.from"),
    ("undeclared-argument", "ARG BASE_IMAGE=python:3.11.13-slim-bookworm", "",
     "dockerfile.from"),
    ("argument-after-from", "ARG BASE_IMAGE=python:3.11.13-slim-bookworm\n\nFROM ${BASE_IMAGE}",
     "FROM ${BASE_IMAGE}\nARG BASE_IMAGE=python:3.11.13-slim-bookworm", "dockerfile.from"),
    ("fixed-base", "FROM ${BASE_IMAGE}", "FROM python:3.11.13-slim-bookworm", "dockerfile.base"),
    ("another-argument", "ARG BASE_IMAGE=python:3.11.13-slim-bookworm\n\nFROM ${BASE_IMAGE}",
     "ARG PYTHON=python:3.11.13-slim-bookworm\nFROM ${PYTHON}", "dockerfile.base"),
    ("no-stage", "FROM runtime AS patient", "FROM runtime AS patients", "dockerfile.stage"),
    # A stage on a name that is no stage is on an image of that name, not on the base.
    ("stage-on-a-typo", "FROM runtime AS patient", "FROM runtim AS patient", "dockerfile.base"),
    ("root", "USER 10001:10001", "USER root", "dockerfile.user"),
    ("uid-0", "USER 10001:10001", "USER 0", "dockerfile.user"),
    ("named-user", "USER 10001:10001", "USER app", "dockerfile.user"),
    ("no-user", "USER 10001:10001", "", "dockerfile.user"),
    ("dev-tool", "pydantic-settings==2.16.3", "pydantic-settings==2.16.3 pytest==9.2.0",
     "dockerfile.packages"),
    ("unpinned", "pydantic==2.14.3", "pydantic", "dockerfile.packages"),
    ("compiler", "RUN PIP_ROOT_USER_ACTION", "RUN apt-get install -y gcc && PIP_ROOT_USER_ACTION",
     "dockerfile.packages"),
    ("whole-repo", "COPY system/patient/ /opt/medpubsub/medpubsub/patient/", "COPY . /opt/src",
     "dockerfile.copy"),
    ("other-service", "COPY system/patient/ /opt/medpubsub/medpubsub/patient/",
     "COPY system/patient/ /opt/medpubsub/medpubsub/patient/\n"
     "COPY system/medicine/ /opt/medpubsub/medpubsub/medicine/", "dockerfile.copy"),
    ("shell-entrypoint", '["python", "-m", "medpubsub", "patient"]', "python -m medpubsub patient",
     "dockerfile.entrypoint"),
    ("wrong-service", '["python", "-m", "medpubsub", "patient"]',
     '["python", "-m", "medpubsub", "medicine"]', "dockerfile.entrypoint"),
    ("missing-library", " confluent-kafka==2.16.1", "", "dockerfile.imports"),
    ("missing-shared-module", "COPY system/*.py system/py.typed",
     "COPY system/__init__.py system/__main__.py system/cli.py", "dockerfile.imports"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [pytest.param(old, new, rule, id=name) for name, old, new, rule in BROKEN],
)
def test_a_broken_dockerfile_is_reported_by_rule(
    checkout: Path, old: str, new: str, rule: str
) -> None:
    subject = break_patient(checkout, old, new)
    findings = dockerfile_findings(checkout, "patient")
    assert any(f.object == subject and f.rule == rule for f in findings), [str(f) for f in findings]


def test_an_import_the_image_lacks_is_named(checkout: Path) -> None:
    service = checkout / "system/patient/service.py"
    service.write_text("import requests\n" + service.read_text())
    findings = [str(f) for f in dockerfile_findings(checkout, "patient")]
    assert findings == [
        "system/Dockerfile --target patient: dockerfile.imports: system/patient/service.py imports "
        "requests, which the image does not have"
    ]


def test_commands_found_through_entry_points_need_nothing_in_the_image(checkout: Path) -> None:
    """system/cli.py finds the harness commands through an entry-point group, so an image
    without the harness simply has none."""
    assert "entry_points(group=COMMANDS_GROUP)" in (checkout / "system/cli.py").read_text()
    assert dockerfile_findings(checkout, "medicine") == []
