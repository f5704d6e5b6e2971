"""The ScaledJob design: KEDA's ScaledJob `medicine` (keda/medicine-scaledjob.yaml) starts maker
Jobs on the lag of the orders topic, and keeps `minReplicaCount` of them warm.

On this machine `platforms/local.py` runs the same manifest through a KEDA-exact controller; on a
cluster KEDA itself does. The latency bounds were set for this design, so it adds nothing to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_medpubsub.bench.rows import BenchRow, Manifest
from pytest_medpubsub.designs.base import Design

if TYPE_CHECKING:
    from pytest_medpubsub.platforms.cluster_designs import ClusterDesign
    from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem

NAME = "scaledjob"


def _set_env(container: dict[str, Any], values: dict[str, str]) -> None:
    kept = [entry for entry in container.get("env", []) if entry["name"] not in values]
    container["env"] = kept + [{"name": name, "value": value} for name, value in values.items()]


def one_at_a_time(document: Manifest) -> Manifest:
    """The ScaledJob and makers as they were before capacity-aware makers: no warm floor, a
    maker makes one order at a time, and KEDA over-provisions by a constant (`custom`: lag + 8
    makers) against partition head-of-line waits."""
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


class ScaledJob:
    name = NAME
    summary = "KEDA's ScaledJob starts makers on the orders' lag, warm makers wait at rest"
    latency_allowance_s = 0.0
    needs_keda = True
    chaos_actions: tuple[str, ...] = ()  # its makers and broker are every design's
    left_out: Mapping[str, str] = MappingProxyType({})  # the bounds were set for this design
    bench_rows = (
        BenchRow(
            "capacity",
            "warm makers, several orders in flight each (keda/medicine-scaledjob.yaml)",
            NAME,
        ),
        BenchRow(
            "one-at-a-time",
            "the previous makers: one order at a time, no warm floor, lag + 8 makers",
            NAME,
            one_at_a_time,
            # Past 15 patients its p95 is 6-14 x the floor already (README, 2026-12-01).
            max_patients=20,
        ),
    )

    def local_platform(self, run: LocalRun, manifest: Path | None = None) -> LocalSystem:
        from pytest_medpubsub.platforms.local import LocalPlatform

        return LocalPlatform(run, scaledjob_manifest=manifest)

    def cluster_overlay(self, platform_overlay: str) -> str:
        return platform_overlay  # k8s/overlays are this design's

    def on_cluster(self, objects: list[Manifest]) -> ClusterDesign:
        from pytest_medpubsub.platforms.cluster_designs import ScaledJobDesign

        return ScaledJobDesign.of(objects)


DESIGN: Design = ScaledJob()
