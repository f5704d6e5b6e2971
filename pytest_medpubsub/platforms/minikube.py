"""A minikube profile for the harness: started (or reused when running), images loaded with
`minikube image load`, Kafka reached at `minikube ip` on the external listener's NodePorts.

At the end a profile this run created is deleted, one it found stopped is stopped again, and a
running one is left running (the platform removes the system from it), so a developer's profile
survives the tests.

**CPUs.** Kafka, the operators and up to 40 makers want 4 CPUs, but minikube refuses a `--cpus`
above what it can have ("Requested cpu count 4 is greater than the available cpus of 2"; with the
docker driver that is the engine's NCPU, which Docker Desktop caps below the host's). So the
profile gets `min(4, this machine's CPUs, the engine's NCPU)`, never below minikube's minimum of
2 (minikube then says itself that the machine is too small). Not `--cpus=max` (minikube 1.22+):
on a large machine that is every core, and with a VM driver all of them are handed to the VM.

**Start** runs through `watched.run_watched`: bounded by `START_TIMEOUT_S`, and a hang stops
minikube with its `docker` and `kubeadm` children and quotes its last line.

**Images.** Each is loaded under a content tag (`node_images`): a reused profile whose pods run
an earlier build under the same tag gets a new name, so the pods are replaced with the build just
made instead of running on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.jars import cache_dir
from pytest_medpubsub.platforms import node_images
from pytest_medpubsub.platforms.commands import probe, run
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.prerequisites import require_docker_engine, require_tool
from pytest_medpubsub.platforms.watched import run_watched

# Kafka (1 GiB), the operators and up to 40 makers of 64 MiB each do not fit minikube's default.
WANTED_CPUS = 4
MINIMUM_CPUS = 2  # minikube's own minimum for Kubernetes
MEMORY_FLAG = "--memory=6g"
START_TIMEOUT_S = 900.0
LOAD_TIMEOUT_S = 600.0


def cpus_for(machine_cpus: int | None, engine_cpus: int | None) -> int:
    """The profile's `--cpus`: `WANTED_CPUS` if both this machine and the Docker engine have
    that many, else as many as the smaller has, but not below `MINIMUM_CPUS`."""
    known = [n for n in (machine_cpus, engine_cpus) if n is not None and n > 0]
    available = min(known) if known else WANTED_CPUS
    return max(MINIMUM_CPUS, min(WANTED_CPUS, available))


def start_command(profile: str, cpus: int) -> list[str]:
    return ["minikube", "start", "--profile", profile, f"--cpus={cpus}", MEMORY_FLAG]


def load_command(profile: str, image: str) -> list[str]:
    """`minikube image load` of an image in the local Docker engine (minikube caches it and
    loads it into the profile's container runtime)."""
    return ["minikube", "--profile", profile, "image", "load", image]


ENGINE_CPUS_COMMAND = ["docker", "info", "--format", "{{.NCPU}}"]


def _engine_cpus() -> int | None:
    """The Docker engine's CPUs (what minikube's docker driver can have); None if unknown."""
    outcome = probe(ENGINE_CPUS_COMMAND, timeout_s=15)
    if outcome is None or not outcome.ok:
        return None
    try:
        return int(outcome.stdout.strip())
    except ValueError:
        return None


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
        command = start_command(self.profile, cpus_for(os.cpu_count(), _engine_cpus()))
        log = cache_dir() / "minikube" / self.profile / "minikube-start.log"
        with progress.step(
            f"starting minikube profile {self.profile} ({' '.join(command[4:])}; log in {log})"
        ):
            # minikube runs docker and kubeadm under it: a hang stops them all and quotes
            # minikube's last line (`watched`).
            run_watched(command, timeout_s=START_TIMEOUT_S, log=log)
        return Kubectl(context=self.profile)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        with node_images.tagged_by_content(images) as by_content:
            for tagged in by_content.values():
                with progress.step(f"loading {tagged} into minikube"):
                    run(load_command(self.profile, tagged), timeout_s=LOAD_TIMEOUT_S)
        return by_content

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
