"""The cluster of kubectl's current context, which the harness neither creates nor deletes.

The images reach the cluster one of two ways, and exactly one must be chosen: pushed to the
registry given with `--medpubsub-image-registry` (the cluster pulls them, `imagePullPolicy:
Always`), or imported into the node's containerd given with `--medpubsub-containerd=SOCKET` (a
single-node cluster on this machine without a registry; never pulled). Strimzi's Kafka is reached
at a node's address on the external listener's NodePorts (the machine running the tests must
reach the nodes on 32100-32101), and at the end only what the run put there is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.platforms import containerd
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
    created = False

    def __init__(
        self, image_registry: str | None, log_dir: Path, containerd_socket: str | None = None
    ) -> None:
        self.image_registry = image_registry
        self.containerd_socket = containerd_socket
        self.log_dir = log_dir
        self.context: str | None = None

    @property
    def overlay(self) -> str:
        return "existing" if self.image_registry else "existing-preloaded"

    @property
    def external_kafka_overlay(self) -> str:
        return "external-kafka" if self.image_registry else "external-kafka-preloaded"

    def check(self) -> None:
        if bool(self.image_registry) == bool(self.containerd_socket):
            raise PlatformUnavailable(
                "an existing cluster gets the service images either from a registry "
                "(--medpubsub-image-registry) or imported into its node's containerd "
                "(--medpubsub-containerd), so exactly one of the two is required with "
                "--medpubsub-cluster=existing."
            )
        context = current_context()
        require_docker_engine(self.name)
        if self.containerd_socket:
            containerd.require_containerd(self.containerd_socket)
        require_reachable(context)
        self.context = context

    def up(self) -> Kubectl:
        self.context = self.context or current_context()
        progress.say(f"using the existing cluster of kubectl context {self.context}")
        return Kubectl(context=self.context)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        if self.containerd_socket:
            for image in images:
                containerd.import_image(image, self.containerd_socket, self.log_dir)
            return {image: image for image in images}
        assert self.image_registry is not None  # check() guarantees one of the two
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
