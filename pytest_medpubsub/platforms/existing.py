"""The cluster of kubectl's current context, which the harness neither creates nor deletes.

Images are pushed to the registry given with `--medpubsub-image-registry` (the cluster must be
able to pull from it), Kafka is reached at a node's address on the external listener's
NodePorts (the machine running the tests must reach the nodes on 32100-32101), and at the end
only what the run put there is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.images import push
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.prerequisites import (
    current_context,
    require_docker_engine,
    require_reachable,
)

ADDRESS_PREFERENCE = ("ExternalIP", "InternalIP")


class ExistingBackend:
    name = "existing"
    overlay = "existing"
    created = False

    def __init__(self, image_registry: str | None, log_dir: Path) -> None:
        self.image_registry = image_registry
        self.log_dir = log_dir
        self.context: str | None = None

    def check(self) -> None:
        context = current_context()
        if not self.image_registry:
            raise PlatformUnavailable(
                "an existing cluster pulls the service images from a registry, so "
                "--medpubsub-image-registry is required with --medpubsub-cluster=existing."
            )
        require_docker_engine(self.name)
        require_reachable(context)
        self.context = context

    def up(self) -> Kubectl:
        self.context = self.context or current_context()
        progress.say(f"using the existing cluster of kubectl context {self.context}")
        return Kubectl(context=self.context)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        assert self.image_registry is not None  # check() guarantees it
        pushed = {}
        for image in images:
            with progress.step(f"pushing {image} to {self.image_registry}"):
                pushed[image] = push(image, self.image_registry, self.log_dir)
        return pushed

    def advertised_host(self, kubectl: Kubectl) -> str:
        nodes = kubectl.items("nodes", namespace="")
        for preferred in ADDRESS_PREFERENCE:
            for node in nodes:
                for address in node.get("status", {}).get("addresses", []):
                    if address.get("type") == preferred:
                        return str(address["address"])
        raise PlatformError("no node of the cluster has an ExternalIP or InternalIP address")

    def down(self) -> None:
        """Nothing: the cluster is not ours."""

    def describe(self) -> str:
        return f"the cluster of kubectl context {self.context}"
