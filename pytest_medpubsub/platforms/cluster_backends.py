"""Which cluster a run gets: the options the harness was given, what differs between kind,
minikube and an existing cluster (`ClusterBackend`), and the backend for a kind.

Options that do not fit together are refused here (`check_options`), in one sentence and before
anything starts, rather than minutes into a start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pytest_medpubsub import designs
from pytest_medpubsub.platforms import external_kafka
from pytest_medpubsub.platforms.base import PlatformUnavailable
from pytest_medpubsub.platforms.existing import ExistingBackend
from pytest_medpubsub.platforms.kind import KindBackend
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.minikube import MinikubeBackend

KINDS = ("kind", "minikube", "existing")


@dataclass(frozen=True)
class ClusterOptions:
    """How the harness wants its cluster.

    `project_dir` is the checkout (manifests, Dockerfile); `report_dir` receives build logs and
    diagnostics; `keep` leaves everything running at the end; `image_registry` is where an
    existing cluster pulls the images from, `containerd` the socket of the node's containerd they
    are imported into instead; `strimzi_manifest` / `keda_manifest` replace the release downloads
    with a local file or another URL; `kafka` is a broker of the user's own (HOST:PORT) used
    instead of Strimzi; `cluster_name` names the kind cluster or minikube profile; `design` is
    who starts the makers (a name of `pytest_medpubsub.designs`).
    """

    project_dir: Path
    report_dir: Path
    keep: bool
    image_registry: str | None
    strimzi_manifest: str | None
    keda_manifest: str | None
    cluster_name: str = "medpubsub"
    kafka: str | None = None
    containerd: str | None = None
    design: str = designs.DEFAULT


class ClusterBackend(Protocol):
    """What differs between kind, minikube and an existing cluster."""

    name: str
    created: bool
    """True once `up` created the cluster: `down` deletes it, so nothing needs removing first."""

    @property
    def overlay(self) -> str:
        """The overlay of `k8s/overlays` this cluster gets, with Strimzi."""

    @property
    def external_kafka_overlay(self) -> str:
        """The overlay when Kafka is outside the cluster (`--medpubsub-kafka`): no Strimzi."""

    def check(self) -> None:
        """Raise `PlatformUnavailable` (one sentence, within seconds) if a prerequisite lacks."""

    def up(self) -> Kubectl:
        """Create or reuse the cluster; kubectl bound to it."""

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        """Make the local images available to the cluster; the name each is pulled by."""

    def advertised_host(self, kubectl: Kubectl) -> str:
        """The address this machine reaches the cluster's NodePorts at."""

    def down(self) -> None:
        """Undo `up`: delete a cluster it created (stop one it started); leave others as found."""

    def describe(self) -> str:
        """A line telling a user how to reach (and delete) the cluster."""


def backend_for(kind: str, options: ClusterOptions) -> ClusterBackend:
    """The backend of `kind` (one of `KINDS`); nothing happens before its `up()`."""
    if kind == "kind":
        return KindBackend(options.project_dir, options.cluster_name)
    if kind == "minikube":
        return MinikubeBackend(options.cluster_name)
    if kind == "existing":
        return ExistingBackend(
            options.image_registry, options.report_dir / "cluster", options.containerd
        )
    raise PlatformUnavailable(f"unknown cluster kind {kind!r}; use one of {', '.join(KINDS)}.")


def check_options(kind: str, options: ClusterOptions) -> None:
    """Raise `PlatformUnavailable` when an option is for another kind of cluster."""
    if options.containerd and kind != "existing":
        raise PlatformUnavailable(
            f"--medpubsub-containerd is for --medpubsub-cluster=existing; {kind} loads the "
            "images into its node itself."
        )


def external_kafka_of(options: ClusterOptions) -> external_kafka.ExternalKafka | None:
    """The user's own broker (`--medpubsub-kafka`), or None: Strimzi runs Kafka in the cluster."""
    return external_kafka.parse(options.kafka) if options.kafka else None
