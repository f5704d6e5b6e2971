"""How `make e2e-here` judges the chaos experiment's journal: completed without deviating, or a
failure (a missing or unreadable journal is one too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_medpubsub.here import e2e, runs


@pytest.mark.parametrize(
    ("journal", "status"),
    [
        ({"status": "completed", "deviated": False}, 0),
        ({"status": "completed", "deviated": True}, 1),
        ({"status": "failed", "deviated": False}, 1),
        ({"status": "interrupted"}, 1),
        (None, 1),
    ],
)
def test_only_a_completed_experiment_that_did_not_deviate_passes(
    tmp_path: Path, journal: dict[str, object] | None, status: int
) -> None:
    path = tmp_path / "journal.json"
    if journal is not None:
        path.write_text(json.dumps(journal))
    assert runs.judge(path) == status


def test_the_scenarios_are_the_four_the_issue_names_and_the_locust_ramp() -> None:
    assert [Path(s).name for s in e2e.SCENARIOS] == [
        "test_steady_state.py",
        "test_step_ramp.py",
        "test_maker_killed.py",
        "test_backlog_drain.py",
        "test_load_ramp.py",
    ]
    root = Path(__file__).resolve().parents[1]
    assert all((root / scenario).is_file() for scenario in e2e.SCENARIOS)
    assert (root / e2e.CHAOS_EXPERIMENT).is_file()


def test_the_dispatcher_design_runs_scenarios_of_the_same_suite() -> None:
    root = Path(__file__).resolve().parents[1]
    assert e2e.DISPATCHER_SCENARIOS
    assert set(e2e.DISPATCHER_SCENARIOS) <= set(e2e.SCENARIOS)
    assert all((root / scenario).is_file() for scenario in e2e.DISPATCHER_SCENARIOS)


def _job(name: str, owner: str | None, succeeded: int = 1) -> dict[str, object]:
    refs = [{"kind": "ScaledJob", "name": owner}] if owner else []
    return {
        "metadata": {"name": name, "ownerReferences": refs},
        "spec": {"template": {"spec": {"containers": [{"image": "medpubsub/medicine:0.1.0"}]}}},
        "status": {"succeeded": succeeded},
    }


def _pod(job: str, image_id: str) -> dict[str, object]:
    return {
        "metadata": {"name": f"{job}-x", "labels": {"job-name": job}},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"image": "docker.io/medpubsub/medicine:0.1.0", "imageID": image_id}
            ],
        },
    }


def test_the_evidence_counts_the_jobs_by_owner_and_the_images_their_pods_ran() -> None:
    from pytest_medpubsub.here import evidence

    jobs = {
        "items": [
            _job("medicine-a", "medicine"),
            _job("medicine-b", "medicine", 0),
            _job("x", None),
        ]
    }
    pods = {"items": [_pod("medicine-a", "sha256:1"), _pod("medicine-b", "sha256:1")]}
    summary = evidence.summarize(jobs, pods)
    assert summary["jobs"] == 3
    assert summary["owners"] == {"ScaledJob/medicine": 2}
    assert summary["images"] == {"medpubsub/medicine:0.1.0": 3}
    assert summary["pod_images"] == {"sha256:1": 2}
    first = summary["list"][0]
    assert first["pods"] == [
        {
            "name": "medicine-a-x",
            "phase": "Succeeded",
            "image": "docker.io/medpubsub/medicine:0.1.0",
            "image_id": "sha256:1",
        }
    ]
