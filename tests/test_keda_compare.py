"""The local-versus-real-KEDA comparison: reports aligned on the step, figures side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_medpubsub.keda.compare import main, markdown, step_run

S = 1_000_000_000


def a_report(step_at_s: int, peak_jobs: int, scale_out_s: float) -> dict[str, Any]:
    timeline = [
        {"t_ns": t * S, "patients": 1 if t < step_at_s else 5, "jobs": 2, "lag": 1}
        for t in range(step_at_s + 5)
    ]
    timeline[-1]["jobs"] = peak_jobs
    return {
        "timeline": timeline,
        "orders": 100,
        "max_jobs": peak_jobs,
        "latency_s": {"p50": 2.1, "p95": 2.5, "p99": 3.0},
        "lost_orders": 0,
        "duplicate_tabs": 0,
        "slo": {"checks": [{"name": "scale_out", "measured": scale_out_s}]},
    }


def test_timelines_are_aligned_on_the_step_whatever_the_clock() -> None:
    run = step_run("local", a_report(step_at_s=10, peak_jobs=4, scale_out_s=2.0))

    assert run.seconds[10] == 0.0
    assert run.seconds[0] == -10.0
    assert run.figures["scale out (s)"] == 2.0


def test_the_table_has_one_column_per_platform() -> None:
    table = markdown(
        [
            step_run("local", a_report(5, 4, 2.0)),
            step_run("cluster", a_report(8, 5, 1.07)),
        ]
    )

    assert "| figure | local | cluster |" in table
    assert "| peak makers | 4 | 5 |" in table
    assert "| scale out (s) | 2.00 | 1.07 |" in table
    assert "| back to the warm floor (s) | – | – |" in table


def test_a_missing_report_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    local.write_text(json.dumps(a_report(5, 4, 2.0)))

    status = main(
        [
            "--local",
            str(local),
            "--cluster",
            str(tmp_path / "none.json"),
            "--out",
            str(tmp_path / "p.png"),
        ]
    )

    assert status == 2
