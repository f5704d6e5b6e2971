"""A minikube profile for the harness: started (or reused when running), images loaded with
`minikube image load`, Kafka reached at `minikube ip` on the external listener's NodePorts.

At the end a profile this run created is deleted, one it found stopped is stopped again, and a
running one is left running (the platform removes the system from it), so a developer's profile
survives the tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.commands import probe, run
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.prerequisites import require_docker_engine, require_tool

# Kafka (1 GiB), the operators and up to 40 makers of 64 MiB each do not fit minikube's default.
START_FLAGS = ("--cpus=4", "--memory=6g")
START_TIMEOUT_S = 900.0
LOAD_TIMEOUT_S = 600.0


class MinikubeBackend:
    name = "minikube"
    overlay = "minikube"
    external_kafka_overlay = "external-kafka-preloaded"

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.created = False
        self.started = False

    def check(self) -> None:
        require_docker_engine(self.name)
        require_tool("minikube", "the minikube platform runs its cluster with minikube")
        require_tool("kubectl", "the minikube platform drives the cluster with kubectl")

    def up(self) -> Kubectl:
        state = self._state()
        if state == "Running":
            progress.say(f"reusing the running minikube profile {self.profile}")
            return Kubectl(context=self.profile)
        # A failed start leaves a profile behind, so it counts as ours from here on.
        self.created = state is None
        self.started = True
        with progress.step(f"starting minikube profile {self.profile}"):
            run(
                ["minikube", "start", "--profile", self.profile, *START_FLAGS],
                timeout_s=START_TIMEOUT_S,
            )
        return Kubectl(context=self.profile)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        for image in images:
            with progress.step(f"loading {image} into minikube"):
                run(
                    ["minikube", "--profile", self.profile, "image", "load", image],
                    timeout_s=LOAD_TIMEOUT_S,
                )
        return {image: image for image in images}

    def advertised_host(self, kubectl: Kubectl) -> str:
        return run(["minikube", "--profile", self.profile, "ip"], timeout_s=30).strip()

    def down(self) -> None:
        """Delete a profile this run created; stop one it found stopped and started."""
        if self.created:
            with progress.step(f"deleting minikube profile {self.profile}"):
                run(["minikube", "delete", "--profile", self.profile], timeout_s=300)
        elif self.started:
            with progress.step(f"stopping minikube profile {self.profile} again"):
                run(["minikube", "stop", "--profile", self.profile], timeout_s=300)
        self.created = self.started = False

    def describe(self) -> str:
        return (
            f"minikube profile {self.profile} (kubectl context {self.profile}; delete it with "
            f"`minikube delete --profile {self.profile}`)"
        )

    def _state(self) -> str | None:
        """The profile's API server state ("Running", "Stopped", ...), None without a profile."""
        outcome = probe(
            ["minikube", "status", "--profile", self.profile, "--output", "json"], timeout_s=60
        )
        if outcome is None or not outcome.stdout.strip():
            return None
        try:
            status = json.loads(outcome.stdout)
        except json.JSONDecodeError:
            return None
        if not isinstance(status, dict) or "APIServer" not in status:
            return None  # `minikube status` of a missing profile prints an error object
        return str(status["APIServer"])
