"""A kind cluster for the harness, created (or reused) through pytest-kind's `KindCluster`.

pytest-kind is used for what it does well (create-or-reuse by name, its kubeconfig file, delete)
and worked around where it falls short:

- it downloads kind v0.17 and kubectl v1.25 unless given binaries: the ones on PATH are passed;
- reusing a cluster it did not create leaves it with an empty kubeconfig file, so the kubeconfig
  is exported with `kind get kubeconfig` first;
- its subprocess calls have no timeout and its `port_forward` starts kubectl up to ten times: the
  images are loaded and kubectl is run through our own calls with timeouts, and Kafka is reached
  through the kind port mappings of `k8s/overlays/kind/kind-config.yaml`, not a port-forward;
- `KindCluster()` creates `.pytest-kind/<name>/` in the current directory, so it is constructed
  only when a cluster is really wanted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_kind import KindCluster

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.jars import cache_dir
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.commands import probe, run
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.prerequisites import require_docker_engine, require_tool

KIND_CONFIG = Path("k8s/overlays/kind/kind-config.yaml")
HOST = "127.0.0.1"
EXTERNAL_PORTS = (32100, 32101)
LOAD_TIMEOUT_S = 600.0


class KindBackend:
    """Create-or-reuse a kind cluster named `cluster_name`; delete it only if created here."""

    name = "kind"
    overlay = "kind"
    external_kafka_overlay = "external-kafka-preloaded"

    def __init__(self, project_dir: Path, cluster_name: str) -> None:
        self.project_dir = project_dir
        self.cluster_name = cluster_name
        self.kubeconfig = cache_dir() / "kind" / cluster_name / "kubeconfig"
        self.created = False
        self._cluster: KindCluster | None = None

    def check(self) -> None:
        require_docker_engine(self.name)
        require_tool("kind", "the kind platform creates its cluster with kind")
        require_tool("kubectl", "the kind platform drives the cluster with kubectl")

    def up(self) -> Kubectl:
        kind = Path(require_tool("kind", "the kind platform creates its cluster with kind"))
        kubectl = Path(require_tool("kubectl", "the kind platform drives the cluster"))
        existed = self._exists()
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        if existed:
            self.kubeconfig.write_text(
                run([str(kind), "get", "kubeconfig", "--name", self.cluster_name], timeout_s=30)
            )
            self.kubeconfig.chmod(0o600)
        cluster = KindCluster(
            self.cluster_name, kubeconfig=self.kubeconfig, kind_path=kind, kubectl_path=kubectl
        )
        action = "reusing" if existed else "creating"
        with progress.step(f"{action} kind cluster {self.cluster_name}"):
            try:
                cluster.create(config_file=self.project_dir / KIND_CONFIG)
            except Exception as error:  # pytest-kind raises CalledProcessError and pykube errors
                raise PlatformError(
                    f"kind could not create cluster {self.cluster_name}: {error}"
                ) from None
        self._cluster = cluster
        self.created = not existed
        if existed:
            self._check_port_mappings()
        return Kubectl(kubeconfig=self.kubeconfig)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        with progress.step(f"loading {', '.join(images)} into kind"):
            run(
                ["kind", "load", "docker-image", "--name", self.cluster_name, *images],
                timeout_s=LOAD_TIMEOUT_S,
            )
        return {image: image for image in images}

    def advertised_host(self, kubectl: Kubectl) -> str:
        return HOST

    def down(self) -> None:
        """Delete the cluster if this run created it."""
        if self.created and self._cluster is not None:
            with progress.step(f"deleting kind cluster {self.cluster_name}"):
                self._cluster.delete()
        self.created = False

    def describe(self) -> str:
        return (
            f"kind cluster {self.cluster_name} (KUBECONFIG={self.kubeconfig}; delete it with "
            f"`kind delete cluster --name {self.cluster_name}`)"
        )

    def _exists(self) -> bool:
        outcome = probe(["kind", "get", "clusters"], timeout_s=30)
        if outcome is None or not outcome.ok:
            raise PlatformError("`kind get clusters` failed; is the Docker engine running?")
        return self.cluster_name in outcome.stdout.split()

    def _check_port_mappings(self) -> None:
        """A reused cluster must have been created with our kind config, or Kafka is unreachable."""
        node = f"{self.cluster_name}-control-plane"
        for port in EXTERNAL_PORTS:
            outcome = probe(["docker", "port", node, f"{port}/tcp"], timeout_s=15)
            if outcome is None or f"{HOST}:{port}" not in outcome.stdout:
                raise PlatformError(
                    f"kind cluster {self.cluster_name} exists without the port mappings of "
                    f"{KIND_CONFIG} ({HOST}:{port} is not mapped); delete it with `kind delete "
                    f"cluster --name {self.cluster_name}` and run again"
                )
