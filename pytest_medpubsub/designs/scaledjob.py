"""The ScaledJob design: KEDA's ScaledJob `medicine` (keda/medicine-scaledjob.yaml) starts maker
Jobs on the lag of the orders topic, and keeps `minReplicaCount` of them warm.

On this machine `platforms/local.py` runs the same manifest through a KEDA-exact controller; on a
cluster KEDA itself does. The latency bounds were set for this design, so it adds nothing to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_medpubsub.designs.base import Design

if TYPE_CHECKING:
    from medpubsub.settings import KafkaSettings
    from pytest_medpubsub.k8s.objects import Manifest
    from pytest_medpubsub.kafka.embedded import EmbeddedKafka
    from pytest_medpubsub.platforms.cluster_designs import ClusterDesign
    from pytest_medpubsub.platforms.local_system import LocalSystem

NAME = "scaledjob"


class ScaledJob:
    name = NAME
    summary = "KEDA's ScaledJob starts makers on the orders' lag, warm makers wait at rest"
    latency_allowance_s = 0.0
    needs_keda = True

    def local_platform(
        self,
        kafka: KafkaSettings,
        run_dir: Path,
        *,
        broker: EmbeddedKafka | None = None,
        state_file: Path | None = None,
    ) -> LocalSystem:
        from pytest_medpubsub.platforms.local import LocalPlatform

        return LocalPlatform(kafka, run_dir, broker=broker, state_file=state_file)

    def cluster_overlay(self, platform_overlay: str) -> str:
        return platform_overlay  # k8s/overlays are this design's

    def on_cluster(self, objects: list[Manifest]) -> ClusterDesign:
        from pytest_medpubsub.platforms.cluster_designs import ScaledJobDesign

        return ScaledJobDesign.of(objects)


DESIGN: Design = ScaledJob()
