"""The Kubernetes platforms: kind, minikube and an existing cluster, with Strimzi and KEDA.

`start()` does what a person would do by hand, in this order, each step with progress and a
timeout that names what it waited for and what it saw last:

1. create or reuse the cluster (the backend: `kind.py`, `minikube.py`, `existing.py`);
2. build the service images from this checkout and load (import, or push) them;
3. install Strimzi 1.2.0 and KEDA 2.20.2 from their release manifests (or the files given), wait
   for the operators' Deployments;
4. apply `build/manifests/<overlay>.yaml` with the run's values (advertised host, image names,
   no patients yet), wait for Kafka, every KafkaTopic and what starts the makers to be Ready:
   the ScaledJob, or under the dispatcher design its Deployment (`cluster_designs.py`, overlay
   `dispatcher-<overlay>`);
5. wait until Kafka answers on the external listener from this machine.

With a Kafka of the user's own (`--medpubsub-kafka=HOST:PORT`, `external_kafka.py`) there is no
Strimzi: the overlay is the backend's `external_kafka_overlay`, the topics are created on that
broker before anything is applied, its address goes into the bootstrap Service's EndpointSlice,
only what starts the makers is awaited, and the harness dials HOST:PORT itself.

If a step fails, diagnostics go to the report directory and what was started is torn down (unless
`keep`). `stop()` deletes a cluster this run created, and otherwise removes only what it added.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress
from pytest_medpubsub.k8s.objects import Manifest, dump_documents, of_kind
from pytest_medpubsub.kafka.broker import system_topics
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.offsets import OffsetReader, start_new_group_at_end
from pytest_medpubsub.kafka.security import Credentials, as_identity
from pytest_medpubsub.platforms import diagnostics, external_kafka, operators
from pytest_medpubsub.platforms.base import Platform, PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.cluster_designs import (
    DISPATCHER,
    ClusterDesign,
    design_for,
    needs_keda,
    overlay_for,
)
from pytest_medpubsub.platforms.existing import ExistingBackend
from pytest_medpubsub.platforms.images import build, choose_base, service_images
from pytest_medpubsub.platforms.kafka_lag import LAG_TIMEOUT_S
from pytest_medpubsub.platforms.kind import KindBackend
from pytest_medpubsub.platforms.kubectl import NAMESPACE, Kubectl
from pytest_medpubsub.platforms.manifests import (
    PATIENT_DEPLOYMENT,
    external_bootstrap,
    for_cluster,
    rendered_objects,
)
from pytest_medpubsub.platforms.minikube import MinikubeBackend
from pytest_medpubsub.platforms.status import (
    deployment_state,
    pods_summary,
    ready_state,
    running_pods,
    unfinished,
)
from pytest_medpubsub.platforms.waits import wait_step

KINDS = ("kind", "minikube", "existing")
CREDENTIALS_FILE = "credentials.json"
KAFKA_NAME = "medpubsub"

# Pulling the Kafka image (~700 MB) on a fresh CI runner dominates the Kafka wait.
KAFKA_READY_TIMEOUT_S = 900.0
TOPICS_READY_TIMEOUT_S = 300.0
EXTERNAL_LISTENER_TIMEOUT_S = 180.0
PATIENTS_TIMEOUT_S = 180.0
TEARDOWN_TIMEOUT_S = 300.0
USER_SECRETS_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ClusterOptions:
    """How the harness wants its cluster.

    `project_dir` is the checkout (manifests, Dockerfiles); `report_dir` receives build logs and
    diagnostics; `keep` leaves everything running at the end; `image_registry` is where an
    existing cluster pulls the images from, `containerd` the socket of the node's containerd they
    are imported into instead; `strimzi_manifest` / `keda_manifest` replace the release downloads
    with a local file or another URL; `kafka` is a broker of the user's own (HOST:PORT) used
    instead of Strimzi; `cluster_name` names the kind cluster or minikube profile; `design` is
    who starts the makers (`scaledjob` or `dispatcher`, see cluster_designs.py).
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
    design: str = "scaledjob"


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


def create_cluster_platform(kind: str, options: ClusterOptions) -> Platform:
    """The platform for `kind` (one of `KINDS`); nothing happens before `start()`."""
    return ClusterPlatform(_backend(kind, options), options)


def check_prerequisites(kind: str, options: ClusterOptions) -> None:
    """Raise `PlatformUnavailable` with one sentence when Docker, kind / minikube or the kube
    context is missing, or an option does not fit; returns within seconds either way."""
    _check_options(kind, options)
    _backend(kind, options).check()
    _external_kafka(options)
    keda_given = options.keda_manifest and "://" not in options.keda_manifest
    if keda_given and needs_keda(options.design):
        _wanted_operator(operators.KEDA, options.keda_manifest, options)  # its local images


def _check_options(kind: str, options: ClusterOptions) -> None:
    if options.containerd and kind != "existing":
        raise PlatformUnavailable(
            f"--medpubsub-containerd is for --medpubsub-cluster=existing; {kind} loads the "
            "images into its node itself."
        )


def _external_kafka(options: ClusterOptions) -> external_kafka.ExternalKafka | None:
    return external_kafka.parse(options.kafka) if options.kafka else None


@dataclass(frozen=True)
class _Wanted:
    """An operator the run needs, as its manifest has it; `manifest` is None until downloaded
    (a release is fetched only when the operator is not installed already)."""

    operator: operators.Operator
    manifest: str | None


def _wanted_operator(
    operator: operators.Operator, given: str | None, options: ClusterOptions
) -> _Wanted:
    if given is None:
        return _Wanted(operator, None)
    text = operators.release_manifest(operator, given)
    operator = operators.as_given(operator, text)
    if options.containerd:
        operators.require_local_images(operator, text, given, options.containerd)
    return _Wanted(operator, text)


def _backend(kind: str, options: ClusterOptions) -> ClusterBackend:
    if kind == "kind":
        return KindBackend(options.project_dir, options.cluster_name)
    if kind == "minikube":
        return MinikubeBackend(options.cluster_name)
    if kind == "existing":
        return ExistingBackend(
            options.image_registry, options.report_dir / "cluster", options.containerd
        )
    raise PlatformUnavailable(f"unknown cluster kind {kind!r}; use one of {', '.join(KINDS)}.")


class ClusterPlatform(Platform):
    """The system on a Kubernetes cluster (see the module docstring for `start` and `stop`)."""

    def __init__(self, backend: ClusterBackend, options: ClusterOptions) -> None:
        self.name = backend.name
        self._backend = backend
        self._options = options
        self._kubectl: Kubectl | None = None
        self._kafka: KafkaSettings | None = None
        self._credentials: Credentials | None = None
        self._design: ClusterDesign | None = None
        self._offsets: OffsetReader | None = None
        self._external: external_kafka.ExternalKafka | None = None
        self._installed: list[tuple[operators.Operator, str]] = []
        self._applied = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        try:
            self._start()
        except BaseException as error:
            if self._kubectl is not None and not isinstance(error, KeyboardInterrupt):
                target = self._options.report_dir / "cluster-start-diagnostics"
                self.dump_diagnostics(target)
                progress.say(f"cluster diagnostics written to {target}")
            self._stop_after_failure()
            raise

    def _start(self) -> None:
        _check_options(self._backend.name, self._options)
        self._backend.check()
        external = self._external = _external_kafka(self._options)
        if external is not None:
            # First (a broker that does not answer fails the run before a minute of image
            # builds), and before the ScaledJob exists: KEDA's first poll must find the topic.
            external_kafka.prepare(external, system_topics())
        wanted = self._wanted_operators()
        kubectl = self._kubectl = self._backend.up()
        platform_overlay = (
            self._backend.external_kafka_overlay if external else self._backend.overlay
        )
        overlay = overlay_for(self._options.design, platform_overlay)
        objects = rendered_objects(self._options.project_dir, overlay)
        images = self._images(objects)
        if external is None:
            host = self._backend.advertised_host(kubectl)
            objects = for_cluster(objects, advertised_host=host, images=images, patients=0)
        else:
            objects = for_cluster(
                objects,
                advertised_host=None,
                images=images,
                patients=0,
                external_kafka=external.endpoint,
            )
        design = self._design = design_for(self._options.design, objects)
        if external is not None and start_new_group_at_end(
            external.kafka, design.group, design.topic
        ):
            # A broker of the user's own may hold the orders of an earlier run (of the other
            # design): this design's makers start after them instead of making them again.
            progress.say(f"group {design.group} starts at the end of {design.topic}")
        kubectl.apply(dump_documents(of_kind(objects, "Namespace")), namespace="")
        self._install_operators(kubectl, wanted)
        if external is not None:
            with progress.step(f"applying build/manifests/{overlay}.yaml"):
                kubectl.apply(dump_documents(objects), namespace="", server_side=True)
            self._applied = True
            design.wait_ready(kubectl)
            self._kafka = external.kafka
        else:
            # Kafka and its users first, what starts the makers once they are Ready: KEDA's
            # reconcile of a ScaledJob whose broker or `keda` Secret is missing fails and backs
            # off (doubling), and Secrets are not watched, so its retry could come minutes late.
            first, then = split_makers_starters(objects)
            with progress.step(f"applying build/manifests/{overlay}.yaml (Kafka, topics, users)"):
                kubectl.apply(dump_documents(first), namespace="", server_side=True)
            self._applied = True
            self._wait_for_kafka(kubectl, objects)
            self._credentials = _user_credentials(kubectl, objects)
            if self._credentials is not None:
                # For `chaos run` on the kept system: its probes log in as their own identities.
                path = self._credentials.write(self._options.report_dir / CREDENTIALS_FILE)
                progress.say(f"the Kafka users' passwords: {path} (MEDPUBSUB_CREDENTIALS_FILE)")
            with progress.step("applying what starts the makers"):
                kubectl.apply(dump_documents(then), namespace="", server_side=True)
            design.wait_ready(kubectl)
            # The harness's own reads (topics, lag) are what KEDA reads: as `keda` when secured;
            # the observer and Locust take their own users from `credentials`.
            self._kafka = as_identity(
                KafkaSettings(kafka_bootstrap=external_bootstrap(objects, host)),
                self._credentials,
                "keda",
            )
            wait_step(
                f"Kafka to answer on its external listener {self._kafka.kafka_bootstrap}",
                self._topics_from_here,
                lambda topics: design.topic in topics,
                EXTERNAL_LISTENER_TIMEOUT_S,
            )
        progress.say(f"{self.name}: the system runs on {self._backend.describe()}")

    def _wanted_operators(self) -> list[_Wanted]:
        """KEDA unless the design starts its makers itself; Strimzi unless Kafka is outside the
        cluster."""
        given: dict[operators.Operator, str | None] = {}
        if needs_keda(self._options.design):
            given[operators.KEDA] = self._options.keda_manifest
        else:
            progress.say(
                f"the {self._options.design} design starts its makers: KEDA is not installed"
            )
        if self._external is None:
            given = {operators.STRIMZI: self._options.strimzi_manifest, **given}
        elif self._options.strimzi_manifest:
            progress.say("--medpubsub-kafka is given: Strimzi is not installed")
        return [_wanted_operator(op, manifest, self._options) for op, manifest in given.items()]

    def _images(self, objects: list[Manifest]) -> Mapping[str, str]:
        images = service_images(objects)
        logs = self._options.report_dir / "cluster"
        base = choose_base(self._options.project_dir, logs)
        for service, image in sorted(images.items()):
            with progress.step(f"building {image} on {base.image} (docker build, log in {logs})"):
                build(self._options.project_dir, service, image, logs, base.image)
        return self._backend.load_images(sorted(images.values()))

    def _install_operators(self, kubectl: Kubectl, wanted: list[_Wanted]) -> None:
        """Install what is not installed yet; then wait for the Deployments of the manifest
        actually applied (a downloaded release is read like a given file)."""
        ready: list[operators.Operator] = []
        for want in wanted:
            if operators.is_installed(kubectl, want.operator):
                progress.say(
                    f"{want.operator.name} is installed already "
                    f"({', '.join(want.operator.deployments)} in {want.operator.namespace}); "
                    "using it"
                )
                ready.append(want.operator)
                continue
            text = want.manifest or operators.release_manifest(want.operator, None)
            operator = operators.as_given(want.operator, text)
            operators.install(kubectl, operator, text)
            self._installed.append((operator, text))
            ready.append(operator)
        for operator in ready:
            operators.wait_ready(kubectl, operator)

    def _wait_for_kafka(self, kubectl: Kubectl, objects: list[Manifest]) -> None:
        """Kafka, every KafkaTopic and every KafkaUser Ready (each wait shows Strimzi's reason)."""
        wait_step(
            f"Kafka {KAFKA_NAME} to be Ready",
            partial(_kafka_state, kubectl),
            lambda state: state.startswith("Ready;"),
            KAFKA_READY_TIMEOUT_S,
            interval_s=5.0,
        )
        for kind in ("KafkaTopic", "KafkaUser"):
            expected = len(of_kind(objects, kind))
            if not expected:
                continue
            wait_step(
                f"the {expected} {kind}s to be Ready",
                partial(_resources_state, kubectl, kind.lower() + "s"),
                partial(_all_ready, expected),
                TOPICS_READY_TIMEOUT_S,
            )

    def _topics_from_here(self) -> set[str]:
        admin = AdminClient(quiet(common_config(self.kafka, "medpubsub-cluster-probe")))
        return set(admin.list_topics(timeout=5).topics)

    def stop(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None
        if self._options.keep:
            if self._kafka is not None:
                progress.say(f"keeping {self._backend.describe()}; Kafka: {self.bootstrap_servers}")
            return
        if not self._backend.created and self._kubectl is not None:
            self._remove_system(self._kubectl)
        self._backend.down()
        self._kubectl = None
        self._kafka = None

    def _stop_after_failure(self) -> None:
        try:
            self.stop()
        except PlatformError as error:
            progress.say(f"tearing down after the failure failed too: {error}")

    def _remove_system(self, kubectl: Kubectl) -> None:
        """Take out what this run added to a cluster it did not create.

        The ScaledJob (if the design has one) and the KafkaTopics go first, while KEDA and the
        topic operator still run to release their finalizers; then the namespace; then the
        operators this run installed.
        """
        if self._applied:
            with progress.step(f"removing the medpubsub system from {self._backend.describe()}"):
                if self._design is not None:
                    self._design.remove(kubectl, TEARDOWN_TIMEOUT_S)
                if self._external is None:  # without Strimzi there is no KafkaTopic kind
                    kubectl.delete("kafkatopics", "--all", timeout_s=TEARDOWN_TIMEOUT_S)
                kubectl.delete("namespace", NAMESPACE, namespace="", timeout_s=TEARDOWN_TIMEOUT_S)
            self._applied = False
        while self._installed:
            operator, manifest = self._installed.pop()
            operators.uninstall(kubectl, operator, manifest)

    # ------------------------------------------------------------------ the running system

    @property
    def kafka(self) -> KafkaSettings:
        if self._kafka is None:
            raise PlatformError(f"the {self.name} platform is not started")
        return self._kafka

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def kubectl(self) -> Kubectl:
        if self._kubectl is None:
            raise PlatformError(f"the {self.name} platform is not started")
        return self._kubectl

    @property
    def design(self) -> ClusterDesign:
        if self._design is None:
            raise PlatformError(f"the {self.name} platform is not started")
        return self._design

    def scale_patients(self, count: int) -> None:
        """Scale the patient Deployment and wait until exactly `count` patients are ready."""
        self.kubectl.run("scale", f"deployment/{PATIENT_DEPLOYMENT}", f"--replicas={count}")
        wait_step(
            f"{count} patient(s)",
            lambda: deployment_state(self.kubectl.get("deployment", PATIENT_DEPLOYMENT)),
            lambda state: state == f"available {count}/{count}",
            PATIENTS_TIMEOUT_S,
            interval_s=1.0,
        )

    def patients(self) -> int:
        status = self.kubectl.get("deployment", PATIENT_DEPLOYMENT).get("status", {})
        return int(status.get("readyReplicas", 0) or 0)

    def medicine_jobs(self) -> int:
        return unfinished(self.kubectl.items("jobs", selector=self.design.job_selector))

    def kill_medicine(self, count: int = 1) -> list[str]:
        """Delete up to `count` running maker pods at once, through the API (grace period 0,
        forced: the pods vanish from the API at once).

        Not quite a crash: the kubelet still sends SIGTERM and waits its minimum grace period
        (2 s) before SIGKILL, so a maker can abort its transaction and leave the group, unlike
        the local platform's SIGKILL; the makers' partitions move without the session timeout.
        """
        pods = self.kubectl.items("pods", selector=self.design.maker_selector)
        victims = running_pods(pods)[:count]
        if victims:
            self.kubectl.run(
                "delete", "pod", *victims, "--grace-period=0", "--force", "--wait=false"
            )
        return victims

    def lag(self) -> int:
        if self._offsets is None:
            design = self.design
            self._offsets = OffsetReader(
                self.kafka, design.group, design.topic, timeout_s=LAG_TIMEOUT_S
            )
        return self._offsets.total_lag()

    def warm_makers(self) -> int:
        """The makers kept at rest (the ScaledJob's minReplicaCount): scale-in ends there."""
        return self.design.warm_makers()

    def pause_scaling(self, paused: bool) -> None:
        self.design.pause(self.kubectl, paused)

    def dump_diagnostics(self, directory: Path) -> None:
        if self._kubectl is not None:
            diagnostics.dump(self._kubectl, directory)


def _user_credentials(kubectl: Kubectl, objects: list[Manifest]) -> Credentials | None:
    """The SCRAM users of a secured Kafka (k8s/components/secure-kafka), read from the Secrets
    Strimzi's User Operator creates for them (None: the render has no KafkaUser)."""
    names = [str(user["metadata"]["name"]) for user in of_kind(objects, "KafkaUser")]
    if not names:
        return None

    found: dict[str, str] = {}

    def missing() -> list[str]:
        """The users without a password yet (names only: a wait's message shows what it saw)."""
        for name in names:
            if name not in found and kubectl.exists("secret", name):
                data = kubectl.get("secret", name).get("data") or {}
                if "password" in data:
                    found[name] = base64.b64decode(data["password"]).decode()
        return [name for name in names if name not in found]

    wait_step(
        f"the Secrets of the KafkaUsers {', '.join(names)}",
        missing,
        lambda left: not left,
        USER_SECRETS_TIMEOUT_S,
    )
    return Credentials({name: (name, password) for name, password in found.items()})


def _kafka_state(kubectl: Kubectl) -> str:
    state = ready_state(kubectl.get("kafka", KAFKA_NAME))
    pods = kubectl.items("pods", selector=f"strimzi.io/cluster={KAFKA_NAME}")
    return f"{state}; pods: {pods_summary(pods)}"


def _all_ready(expected: int, states: list[str]) -> bool:
    return len(states) == expected and all(state.endswith(": Ready") for state in states)


def _resources_state(kubectl: Kubectl, plural: str) -> list[str]:
    """`name: state` of each KafkaTopic (by topic name) or KafkaUser."""
    return sorted(
        f"{item['spec'].get('topicName', item['metadata']['name'])}: {ready_state(item)}"
        for item in kubectl.items(plural)
    )


# What starts makers (and KEDA's login for it) waits until Kafka and its users are Ready.
_MAKERS_STARTERS = {
    ("ScaledJob", None),
    ("TriggerAuthentication", None),
    ("Deployment", DISPATCHER),
}


def split_makers_starters(objects: list[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """(everything else, what starts the makers): the ScaledJob and its TriggerAuthentication,
    or the dispatcher's Deployment."""
    first: list[Manifest] = []
    then: list[Manifest] = []
    for item in objects:
        kind, name = item.get("kind"), item.get("metadata", {}).get("name")
        starts = (kind, None) in _MAKERS_STARTERS or (kind, name) in _MAKERS_STARTERS
        (then if starts else first).append(item)
    return first, then
