"""The CI pipeline example runs what the docs promise: lint and the offline suite with Python
3.11 and Java 17 and the jar caches, then the scenarios on kind with the report uploaded even
when they fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[1] / ".github/workflows/ci.yml"


@pytest.fixture(scope="module")
def jobs() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return dict(workflow["jobs"])


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    return next(step for step in job["steps"] if step.get("uses", "").startswith(action))


def test_the_first_job_lints_and_tests_with_python_and_java(jobs: dict[str, Any]) -> None:
    test = jobs["test"]
    assert runs(test) == ["make lint", "make test"]
    assert uses(test, "actions/setup-python")["with"]["python-version"] == "3.11"
    assert uses(test, "actions/setup-java")["with"]["java-version"] == "17"
    cached = uses(test, "actions/cache")["with"]["path"]
    assert "~/.m2/repository" in cached
    assert "~/.cache/medpubsub" in cached


def test_the_e2e_job_runs_the_scenarios_on_kind_and_always_uploads(jobs: dict[str, Any]) -> None:
    e2e = jobs["e2e"]
    assert e2e["needs"] == "test"
    assert any(
        "pytest --medpubsub-cluster=kind scenarios/ --medpubsub-report=build/report" in command
        for command in runs(e2e)
    )
    upload = uses(e2e, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "build/report"
    assert all(job.get("timeout-minutes") for job in jobs.values())
