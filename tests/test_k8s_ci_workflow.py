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
    assert runs(test) == ["make lint", "make test", "make test-designs"]
    assert uses(test, "actions/setup-python")["with"]["python-version"] == "3.11"
    # 21: Strimzi's CRD generator (the CRD schema tests) needs it; Kafka needs 17 or newer.
    assert uses(test, "actions/setup-java")["with"]["java-version"] == "21"
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


def test_the_e2e_here_job_builds_a_cluster_on_the_runner_and_runs_the_scenarios(
    jobs: dict[str, Any],
) -> None:
    here = jobs["e2e-here"]
    assert here["needs"] == "test"
    command = next(run for run in runs(here) if "make e2e-here" in run)
    assert command.startswith("sudo ")  # root, but no privileged Docker
    assert "MEDPUBSUB_CACHE_DIR=$HOME/.cache/medpubsub" in command
    assert uses(here, "actions/setup-go")["with"]["go-version"] == "1.26"
    assert uses(here, "actions/setup-java")["with"]["java-version"] == "17"
    cached = uses(here, "actions/cache")["with"]["path"]
    assert "~/.cache/medpubsub" in cached
    assert "~/go/pkg/mod" not in cached  # gigabytes, and not needed once the binaries are
    upload = uses(here, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "build/e2e-report"


def test_the_ci_script_runs_e2e_here_after_the_tests() -> None:
    script = (WORKFLOW.parents[2] / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in script if line.strip().startswith("make ")]
    assert commands[-3:] == ["make test", "make test-designs", "make e2e-here"]
