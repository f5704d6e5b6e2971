"""Which platform a run uses, from the plugin's options or the CLI's arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.platforms.base import Platform, PlatformUnavailable
from pytest_medpubsub.platforms.local_system import LocalRun

if TYPE_CHECKING:  # the cluster stack (kubernetes, pytest-kind) loads only when asked for
    from pytest_medpubsub.platforms.cluster_backends import ClusterOptions

LOCAL = "local"
CLUSTERS = ("kind", "minikube", "existing")
PLATFORMS = (LOCAL, *CLUSTERS)


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
    design: str = designs.DEFAULT


def check_available(options: PlatformOptions, project_dir: Path) -> None:
    """Raise `PlatformUnavailable` (one sentence) when the platform cannot run here."""
    _design(options)
    if options.cluster == LOCAL:
        return
    from pytest_medpubsub.platforms import cluster

    cluster.check_prerequisites(options.cluster, _cluster_options(options, project_dir))


def create_local(
    options: PlatformOptions, kafka: KafkaSettings, broker: EmbeddedKafka | None
) -> Platform:
    return _design(options).local_platform(
        LocalRun(kafka, options.run_dir, broker=broker, state_file=options.state_file)
    )


def _design(options: PlatformOptions) -> designs.Design:
    try:
        return designs.design(options.design)
    except designs.UnknownDesign as error:
        raise PlatformUnavailable(str(error)) from None


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
