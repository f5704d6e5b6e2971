"""The designs the benchmark compares: ScaledJob manifests the local platform runs, and the
dispatcher.

`capacity` is the manifest the clusters get (`keda/medicine-scaledjob.yaml`): warm makers that
hold several orders at once. `one-at-a-time` is the previous behaviour, derived from the same
file so that nothing else differs: no warm floor, a maker makes one order at a time, and KEDA
over-provisions by a constant (`custom`: lag + 8 makers) against partition head-of-line waits.
`dispatcher` is the other deployment design (issue 11): no ScaledJob, one permanent consumer that
starts a maker process per order (`LocalDispatcherPlatform`); its manifest is not used.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Design:
    name: str
    summary: str
    adapt: Callable[[Manifest], Manifest]
    # Which local platform runs it: "scaledjob" (the KEDA-exact controller) or "dispatcher".
    platform: str = "scaledjob"

    def manifest(self, source: Path, directory: Path) -> Path:
        """Write this design's ScaledJob (derived from `source`) into `directory`."""
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        target = directory / f"scaledjob-{self.name}.yaml"
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.adapt(copy.deepcopy(document))), encoding="utf-8")
        return target


def _as_is(document: Manifest) -> Manifest:
    return document


def _set_env(container: dict[str, Any], values: dict[str, str]) -> None:
    kept = [entry for entry in container.get("env", []) if entry["name"] not in values]
    container["env"] = kept + [{"name": name, "value": value} for name, value in values.items()]


def one_at_a_time(document: Manifest) -> Manifest:
    """The ScaledJob and makers as they were before capacity-aware makers."""
    spec = document["spec"]
    spec["minReplicaCount"] = 0
    spec["scalingStrategy"] = {
        "strategy": "custom",
        "customScalingQueueLengthDeduction": -8,
        "customScalingRunningJobPercentage": "1",
    }
    for trigger in spec["triggers"]:
        trigger["metadata"]["lagThreshold"] = "1"
    for container in spec["jobTargetRef"]["template"]["spec"]["containers"]:
        _set_env(
            container,
            {
                "MEDICINE_MAX_ORDERS_IN_FLIGHT": "1",
                "MEDICINE_MAX_WORKERS": "30",
                "MEDICINE_MAX_ORDERS": "100",
            },
        )
    return document


DESIGNS: dict[str, Design] = {
    design.name: design
    for design in (
        Design(
            "capacity",
            "warm makers, several orders in flight each (keda/medicine-scaledjob.yaml)",
            _as_is,
        ),
        Design(
            "one-at-a-time",
            "the previous makers: one order at a time, no warm floor, lag + 8 makers",
            one_at_a_time,
        ),
        Design(
            "dispatcher",
            "a permanent consumer that starts one maker process per order (system/dispatcher)",
            _as_is,
            platform="dispatcher",
        ),
    )
}
