"""How `make e2e-here` judges the chaos experiment's journal: completed without deviating, or a
failure (a missing or unreadable journal is one too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_medpubsub.here import e2e


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
    assert e2e._judge(path) == status


def test_the_scenarios_are_the_four_the_issue_names() -> None:
    assert [Path(s).name for s in e2e.SCENARIOS] == [
        "test_steady_state.py",
        "test_step_ramp.py",
        "test_maker_killed.py",
        "test_backlog_drain.py",
    ]
    root = Path(__file__).resolve().parents[1]
    assert all((root / scenario).is_file() for scenario in e2e.SCENARIOS)
    assert (root / e2e.CHAOS_EXPERIMENT).is_file()
