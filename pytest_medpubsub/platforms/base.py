"""What a platform offers the scenarios, so that each scenario is written once.

The local platform (embedded Kafka, processes, a KEDA-exact scaler) and the Kubernetes platforms
(kind, minikube, existing; Strimzi and KEDA) implement this; the plugin's `medpubsub_system`
fixture and the CLI only talk to this interface.
"""

from __future__ import annotations

import abc
from pathlib import Path

from medpubsub.settings import KafkaSettings
from pytest_medpubsub.kafka.security import Credentials


class PlatformError(Exception):
    """The platform could not be brought up or driven; the message says what to do."""


class PlatformUnavailable(PlatformError):
    """A prerequisite (Docker, kind, minikube, a kubeconfig) is missing; one sentence says which."""


class Platform(abc.ABC):
    """A running medpubsub system: Kafka, patients and the medicine makers' scaler."""

    name: str

    @abc.abstractmethod
    def start(self) -> None:
        """Bring Kafka, the topics, the scaler (and 0 patients) up; show progress while waiting."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop everything this platform started (patients, makers, scaler, broker / cluster)."""

    @property
    @abc.abstractmethod
    def kafka(self) -> KafkaSettings:
        """How a client on this machine reaches the system's Kafka (bootstrap, security, topics)."""

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.kafka_bootstrap

    @property
    def credentials(self) -> Credentials | None:
        """Each service's Kafka identity when the broker is secured (None: an open broker)."""
        return None

    @abc.abstractmethod
    def scale_patients(self, count: int) -> None:
        """Run exactly `count` patients from now on (0 stops them all)."""

    @abc.abstractmethod
    def patients(self) -> int:
        """How many patients run now."""

    @abc.abstractmethod
    def medicine_jobs(self) -> int:
        """Unfinished medicine Jobs now (pending ones included), as KEDA counts them."""

    @abc.abstractmethod
    def kill_medicine(self, count: int = 1) -> list[str]:
        """Kill up to `count` running makers abruptly (SIGKILL / pod delete); their names."""

    @abc.abstractmethod
    def lag(self) -> int:
        """Total consumer-group lag of the makers' group on the orders topic, as KEDA sees it."""

    def warm_makers(self) -> int:
        """The makers kept running at rest (the ScaledJob's minReplicaCount): scale-in ends
        there."""
        return 0

    def pause_scaling(self, paused: bool) -> None:
        """Stop (or resume) creating makers, as KEDA's `autoscaling.keda.sh/paused` annotation
        does; running makers finish their orders. Used to build a backlog on purpose."""
        raise PlatformError(f"the {self.name} platform cannot pause its makers' scaling")

    def stop_makers(self) -> list[str]:
        """Stop every running maker gracefully (SIGTERM: it leaves the group at once, and orders
        it had in flight are made again by the next owner); their names. The warm makers stay at
        rest (system/medicine/warm.py), so a backlog built on purpose pauses scaling and then
        stops them: nothing replaces them until scaling resumes."""
        raise PlatformError(f"the {self.name} platform cannot stop its makers")

    def dump_diagnostics(self, directory: Path) -> None:  # noqa: B027 - optional for platforms
        """Write what helps explain a failure (logs, events, status) into `directory`."""

    def __enter__(self) -> Platform:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
