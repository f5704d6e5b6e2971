"""What the cluster platforms do differently per design: who starts the makers, and how the
harness watches, counts, kills and pauses them.

- `scaledjob`: KEDA's ScaledJob `medicine` creates maker Jobs on the lag of group `medicine`;
  `minReplicaCount` of them stay warm; KEDA's paused annotation stops it.
- `dispatcher`: the `dispatcher` Deployment (k8s/components/dispatcher) creates one Job per order
  and is the only member of its group; no maker is warm; scaling it to zero pauses dispatching
  (a new pod reads the orders it had not committed again, as after a crash).

Which of these a run gets, and from which overlay, the design says (`pytest_medpubsub.designs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_medpubsub.designs import dispatcher, scaledjob
from pytest_medpubsub.k8s.dispatcher import dispatcher_deployment
from pytest_medpubsub.k8s.objects import Manifest, dig, dump_documents, mapping, of_kind, sequence
from pytest_medpubsub.keda.scaledjob import ScaledJobError, ScaledJobSpec, parse_scaled_job
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.status import (
    Resource,
    deployment_state,
    pods_summary,
    ready_pods,
    ready_state,
)
from pytest_medpubsub.platforms.waits import wait_step

SCALED_JOB = "medicine"
DISPATCHER = "dispatcher"
READY_TIMEOUT_S = 180.0


class ClusterDesign(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def group(self) -> str:
        """The consumer group whose lag on `topic` is the system's backlog."""

    @property
    def topic(self) -> str: ...

    @property
    def job_selector(self) -> str:
        """The makers' Jobs."""

    @property
    def maker_selector(self) -> str:
        """The makers' pods."""

    def wait_ready(self, kubectl: Kubectl) -> None:
        """Until what starts the makers is Ready (with progress and a timeout)."""

    def warm_makers(self) -> int:
        """Makers kept at rest: scale-in ends there."""

    def pause(self, kubectl: Kubectl, paused: bool) -> None:
        """Stop (or resume) starting makers; running makers finish their orders."""

    def remove(self, kubectl: Kubectl, timeout_s: float) -> None:
        """What must go before the namespace, while the operators still run."""


@dataclass(frozen=True)
class WarmPods:
    """How many makers' pods are Ready, and what every maker pod is doing (for a timeout)."""

    ready: int
    summary: str

    @classmethod
    def of(cls, pods: Sequence[Resource]) -> WarmPods:
        return cls(len(ready_pods(pods)), pods_summary(pods))

    def __str__(self) -> str:
        return f"{self.ready} Ready: {self.summary}"


@dataclass(frozen=True)
class ScaledJobDesign:
    spec: ScaledJobSpec
    name: str = scaledjob.NAME
    job_selector: str = f"scaledjob.keda.sh/name={SCALED_JOB}"
    maker_selector: str = "app.kubernetes.io/name=medicine,app.kubernetes.io/component=maker"

    @classmethod
    def of(cls, objects: list[Manifest]) -> ScaledJobDesign:
        try:
            spec = parse_scaled_job(dump_documents(of_kind(objects, "ScaledJob")), source="render")
        except ScaledJobError as error:
            raise PlatformError(str(error)) from None
        return cls(spec)

    @property
    def group(self) -> str:
        return self.spec.trigger.consumer_group

    @property
    def topic(self) -> str:
        return self.spec.trigger.topic

    def wait_ready(self, kubectl: Kubectl) -> None:
        """The ScaledJob Ready, then its warm makers Ready: each registered on every partition
        it owns (the maker's startup probe), so that the first order does not wait for that."""
        wait_step(
            f"ScaledJob {self.spec.name} to be Ready",
            lambda: ready_state(kubectl.get("scaledjob", self.spec.name)),
            lambda state: state == "Ready",
            READY_TIMEOUT_S,
        )
        warm = self.warm_makers()
        if warm < 1:
            return
        wait_step(
            f"{warm} warm maker(s) to own and register their partitions",
            lambda: WarmPods.of(kubectl.items("pods", selector=self.maker_selector)),
            lambda seen: seen.ready >= warm,
            READY_TIMEOUT_S,
        )

    def warm_makers(self) -> int:
        """KEDA keeps the ScaledJob's minReplicaCount Jobs at rest."""
        return self.spec.scaling.min_rc

    def pause(self, kubectl: Kubectl, paused: bool) -> None:
        """KEDA's own switch: with `autoscaling.keda.sh/paused` it creates no Job; removing the
        annotation resumes at the next poll."""
        annotation = "autoscaling.keda.sh/paused"
        change = f"{annotation}=true" if paused else f"{annotation}-"
        kubectl.run("annotate", "scaledjob", self.spec.name, change, "--overwrite")

    def remove(self, kubectl: Kubectl, timeout_s: float) -> None:
        """The ScaledJob first, while KEDA still runs to release its finalizer."""
        kubectl.delete("scaledjob", self.spec.name, timeout_s=timeout_s)


@dataclass(frozen=True)
class DispatcherDesign:
    group: str
    topic: str
    name: str = dispatcher.NAME
    # system/dispatcher/launchers.py labels the Jobs it creates, and their pods, so.
    job_selector: str = "app.kubernetes.io/component=dispatched-maker"
    maker_selector: str = (
        "app.kubernetes.io/name=medicine,app.kubernetes.io/component=dispatched-maker"
    )

    @classmethod
    def of(cls, objects: list[Manifest]) -> DispatcherDesign:
        deployment = dispatcher_deployment(objects)
        if deployment is None:
            raise PlatformError(
                "the render has no dispatcher Deployment (k8s/components/dispatcher)"
            )
        containers = sequence(dig(deployment, "spec", "template", "spec", "containers"))
        env = {
            str(entry.get("name")): str(entry.get("value"))
            for entry in map(
                mapping, sequence(mapping(containers[0]).get("env") if containers else [])
            )
            if "value" in entry
        }
        return cls(
            group=env.get("DISPATCHER_GROUP_ID", DISPATCHER),
            topic=env.get("MEDPUBSUB_ORDERS_TOPIC", "tabs.orders"),
        )

    def wait_ready(self, kubectl: Kubectl) -> None:
        _wait_dispatcher(kubectl, 1)

    def warm_makers(self) -> int:
        return 0

    def pause(self, kubectl: Kubectl, paused: bool) -> None:
        """No dispatcher, no new makers; the one that comes back reads the orders it had not
        committed again (and finds the Jobs of its previous life by their label)."""
        replicas = 0 if paused else 1
        kubectl.run("scale", f"deployment/{DISPATCHER}", f"--replicas={replicas}")
        _wait_dispatcher(kubectl, replicas)

    def remove(self, kubectl: Kubectl, timeout_s: float) -> None:
        """Nothing outlives the namespace: the Jobs are in it, and no operator holds them."""


def _wait_dispatcher(kubectl: Kubectl, replicas: int) -> None:
    wait_step(
        f"the dispatcher Deployment to have {replicas} available pod(s)",
        lambda: deployment_state(kubectl.get("deployment", DISPATCHER)),
        lambda state: state == f"available {replicas}/{replicas}",
        READY_TIMEOUT_S,
        interval_s=1.0,
    )
