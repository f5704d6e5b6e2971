"""Running an experiment file through Chaos Toolkit's Python API, as `chaos run` would.

`chaos run` reads the experiment's own `runtime` section (rollback and hypothesis strategies);
`chaoslib.experiment.run_experiment` only looks at the settings it is given. `run_file` hands the
experiment's runtime over as settings, so an experiment that says its rollbacks always run gets
them run in pytest too, and configuration values can be overridden (where the state file is,
where the load writes) as `chaos run --var` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

Journal = dict[str, Any]


def load_file(path: Path) -> dict[str, Any]:
    """The experiment in `path`, validated (raises chaoslib's `InvalidExperiment` otherwise)."""
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    experiment: dict[str, Any] = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)
    return experiment


def run_file(path: Path, configuration: Mapping[str, Any] | None = None) -> Journal:
    """Validate and run the experiment in `path`; returns its journal.

    `configuration` overrides keys of the experiment's `configuration` (`chaos run --var`).
    """
    from chaoslib.experiment import run_experiment
    from chaoslib.types import Strategy

    experiment = load_file(path)
    runtime = experiment.get("runtime", {})
    settings = {
        "runtime": {
            "rollbacks": {"strategy": runtime.get("rollbacks", {}).get("strategy", "default")},
            "hypothesis": {"strategy": runtime.get("hypothesis", {}).get("strategy", "default")},
        }
    }
    strategy = Strategy.from_string(settings["runtime"]["hypothesis"]["strategy"])
    journal: Journal = run_experiment(
        experiment,
        settings=settings,
        experiment_vars=(dict(configuration or {}), None),
        strategy=strategy,
    )
    return journal


def outcome(journal: Journal) -> str:
    """One line: the status, whether it deviated, and every activity that failed or was out of
    tolerance, with its output or error (what a failed assertion should show)."""
    problems = []
    for phase in ("before", "after"):
        hypothesis = journal.get("steady_states", {}).get(phase) or {}
        for probe in hypothesis.get("probes", []):
            if probe.get("status") != "succeeded" or probe.get("tolerance_met") is False:
                problems.append(f"{phase}: {_activity(probe)}")
    for section in ("run", "rollbacks"):
        for run in journal.get(section, []):
            if run.get("status") != "succeeded":
                problems.append(f"{section}: {_activity(run)}")
    status = journal.get("status")
    deviated = " (deviated)" if journal.get("deviated") else ""
    return f"experiment {status}{deviated}" + (f"; {'; '.join(problems)}" if problems else "")


def _activity(run: Mapping[str, Any]) -> str:
    name = run.get("activity", {}).get("name", "?")
    detail = run.get("exception") or run.get("output")
    if isinstance(detail, list):
        detail = "".join(str(part) for part in detail).strip().splitlines()[-1:]
    return f"{name} -> {detail!r}"


def activity_runs(journal: Journal, func: str) -> list[dict[str, Any]]:
    """The method's runs of the python provider function `func`, in order."""
    return [
        run
        for run in journal.get("run", [])
        if run.get("activity", {}).get("provider", {}).get("func") == func
    ]


def timestamp_ns(iso: str) -> int:
    """A journal timestamp (ISO 8601 with offset) as wall-clock nanoseconds."""
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)


def to_json(journal: Journal) -> Any:
    """The journal as plain JSON data (outputs may hold values JSON does not know)."""
    return json.loads(json.dumps(journal, default=str))
