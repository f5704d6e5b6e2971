"""Which platform a run uses, from the plugin's options or the CLI's arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.platforms.base import Platform, PlatformUnavailable

if TYPE_CHECKING:  # the cluster stack (kubernetes, pytest-kind) loads only when asked for
    from pytest_medpubsub.platforms.cluster_backends import ClusterOptions

LOCAL = "local"
CLUSTERS = ("kind", "minikube", "existing")
PLATFORMS = (LOCAL, *CLUSTERS)
# How makers are started: KEDA's ScaledJob on the lag, or a dispatcher that starts one per order.
SCALEDJOB = "scaledjob"
DISPATCHER = "dispatcher"
DESIGNS = (SCALEDJOB, DISPATCHER)
# What a design adds to every latency bound (the plugin's defaults and the scenarios' markers
# alike; README, "The dispatcher design"). Every dispatched order pays for a maker of its own
# before its 2 s, where a warm ScaledJob maker pays nothing: an interpreter and its imports
# (0.3 s of CPU), a transactional producer's registration and the marker's read. Measured on
# this 2-core machine: p50 2.5-3.3 s against 2.1 s from one to five patients, and at five
# patients (five process starts a second) the step ramp's p95 4.3 s, p99 4.9 s against the
# ScaledJob's 2.6 / 3.3 s.
DESIGN_LATENCY_ALLOWANCE_S: dict[str, float] = {DISPATCHER: 3.0}


@dataclass(frozen=True)
class PlatformOptions:
    cluster: str
    run_dir: Path
    report_dir: Path
    keep: bool = False
    image_registry: str | None = None
    strimzi_manifest: str | None = None
    keda_manifest: str | None = None
    state_file: Path | None = None
    kafka: str | None = None
    containerd: str | None = None
    design: str = SCALEDJOB


def check_available(options: PlatformOptions, project_dir: Path) -> None:
    """Raise `PlatformUnavailable` (one sentence) when the platform cannot run here."""
    if options.cluster == LOCAL:
        return
    if options.design not in DESIGNS:
        raise PlatformUnavailable(
            f"unknown design {options.design!r}; choose one of {', '.join(DESIGNS)}"
        )
    from pytest_medpubsub.platforms import cluster

    cluster.check_prerequisites(options.cluster, _cluster_options(options, project_dir))


def create_local(
    options: PlatformOptions, kafka: KafkaSettings, broker: EmbeddedKafka | None
) -> Platform:
    from pytest_medpubsub.platforms.local import LocalPlatform

    if options.design == DISPATCHER:
        from pytest_medpubsub.platforms.local_dispatcher import LocalDispatcherPlatform

        return LocalDispatcherPlatform(
            kafka, options.run_dir, broker=broker, state_file=options.state_file
        )
    if options.design != SCALEDJOB:
        raise PlatformUnavailable(
            f"unknown design {options.design!r}; choose one of {', '.join(DESIGNS)}"
        )
    return LocalPlatform(kafka, options.run_dir, broker=broker, state_file=options.state_file)


def create_cluster(options: PlatformOptions, project_dir: Path) -> Platform:
    from pytest_medpubsub.platforms import cluster

    if options.cluster not in CLUSTERS:
        raise PlatformUnavailable(
            f"unknown platform {options.cluster!r}; choose one of {', '.join(PLATFORMS)}"
        )
    return cluster.create_cluster_platform(options.cluster, _cluster_options(options, project_dir))


def _cluster_options(options: PlatformOptions, project_dir: Path) -> ClusterOptions:
    from pytest_medpubsub.platforms.cluster_backends import ClusterOptions

    return ClusterOptions(
        project_dir=project_dir,
        report_dir=options.report_dir,
        keep=options.keep,
        image_registry=options.image_registry,
        strimzi_manifest=options.strimzi_manifest,
        keda_manifest=options.keda_manifest,
        kafka=options.kafka,
        containerd=options.containerd,
        design=options.design,
    )
