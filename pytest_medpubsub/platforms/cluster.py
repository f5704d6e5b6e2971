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

This module holds the order of the steps and the running system's operations; the steps live in
`cluster_backends.py` (options, which cluster), `cluster_operators.py` (Strimzi and KEDA),
`cluster_deploy.py` (images, apply order, Kafka's readiness and users) and `cluster_teardown.py`.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs, progress
from pytest_medpubsub.k8s.objects import dump_documents, of_kind
from pytest_medpubsub.kafka.broker import system_topics
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.offsets import OffsetReader, start_new_group_at_end
from pytest_medpubsub.kafka.security import Credentials, as_identity
from pytest_medpubsub.platforms import (
    cluster_deploy,
    cluster_teardown,
    diagnostics,
    external_kafka,
    operators,
)
from pytest_medpubsub.platforms.base import Platform, PlatformError
from pytest_medpubsub.platforms.cluster_backends import (
    ClusterBackend,
    ClusterOptions,
    backend_for,
    check_options,
    external_kafka_of,
)
from pytest_medpubsub.platforms.cluster_designs import ClusterDesign
from pytest_medpubsub.platforms.cluster_operators import (
    Installed,
    install_missing,
    wanted_operator,
    wanted_operators,
)
from pytest_medpubsub.platforms.kafka_lag import LAG_TIMEOUT_S
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.manifests import (
    PATIENT_DEPLOYMENT,
    external_bootstrap,
    for_cluster,
    rendered_objects,
)
from pytest_medpubsub.platforms.status import (
    deployment_state,
    is_finished,
    running_pods,
    unfinished,
)
from pytest_medpubsub.platforms.waits import wait_step

EXTERNAL_LISTENER_TIMEOUT_S = 180.0
PATIENTS_TIMEOUT_S = 180.0


def create_cluster_platform(kind: str, options: ClusterOptions) -> Platform:
    """The platform for `kind` (one of `cluster_backends.KINDS`); nothing happens before
    `start()`."""
    return ClusterPlatform(backend_for(kind, options), options)


def check_prerequisites(kind: str, options: ClusterOptions) -> None:
    """Raise `PlatformUnavailable` with one sentence when Docker, kind / minikube or the kube
    context is missing, or an option does not fit; returns within seconds either way."""
    check_options(kind, options)
    backend_for(kind, options).check()
    external_kafka_of(options)
    keda_given = options.keda_manifest and "://" not in options.keda_manifest
    if keda_given and designs.design(options.design).needs_keda:
        wanted_operator(operators.KEDA, options.keda_manifest, options)  # its local images


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
        self._installed: Installed = []
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
        check_options(self._backend.name, self._options)
        self._backend.check()
        external = self._external = external_kafka_of(self._options)
        if external is not None:
            # First (a broker that does not answer fails the run before a minute of image
            # builds), and before the ScaledJob exists: KEDA's first poll must find the topic.
            external_kafka.prepare(external, system_topics())
        wanted = wanted_operators(self._options, kafka_outside=external is not None)
        kubectl = self._kubectl = self._backend.up()
        platform_overlay = (
            self._backend.external_kafka_overlay if external else self._backend.overlay
        )
        chosen = designs.design(self._options.design)
        overlay = chosen.cluster_overlay(platform_overlay)
        objects = rendered_objects(self._options.project_dir, overlay)
        images = cluster_deploy.build_and_load_images(self._options, self._backend, objects)
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
        design = self._design = chosen.on_cluster(objects)
        if external is not None and start_new_group_at_end(
            external.kafka, design.group, design.topic
        ):
            # A broker of the user's own may hold the orders of an earlier run (of the other
            # design): this design's makers start after them instead of making them again.
            progress.say(f"group {design.group} starts at the end of {design.topic}")
        kubectl.apply(dump_documents(of_kind(objects, "Namespace")), namespace="")
        install_missing(kubectl, wanted, self._installed)
        if external is not None:
            with progress.step(f"applying build/manifests/{overlay}.yaml"):
                kubectl.apply(dump_documents(objects), namespace="", server_side=True)
            self._applied = True
            design.wait_ready(kubectl)
            self._kafka = external.kafka
        else:
            # Kafka and its users first, what starts the makers once they are Ready (why: in
            # cluster_deploy's docstring).
            first, then = cluster_deploy.split_makers_starters(objects)
            with progress.step(f"applying build/manifests/{overlay}.yaml (Kafka, topics, users)"):
                kubectl.apply(dump_documents(first), namespace="", server_side=True)
            self._applied = True
            cluster_deploy.wait_for_kafka(kubectl, objects)
            self._credentials = cluster_deploy.user_credentials(kubectl, objects)
            if self._credentials is not None:
                # For `chaos run` on the kept system: its probes log in as their own identities.
                path = self._credentials.write(
                    self._options.report_dir / cluster_deploy.CREDENTIALS_FILE
                )
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
        """Take out what this run added to a cluster it did not create (`cluster_teardown`)."""
        if self._applied:
            cluster_teardown.remove_system(
                kubectl,
                self._backend.describe(),
                self._design,
                with_strimzi=self._external is None,
            )
            self._applied = False
        cluster_teardown.uninstall_operators(kubectl, self._installed)

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

    def stop_makers(self) -> list[str]:
        """Delete the makers' unfinished Jobs: their pods get SIGTERM and their grace period."""
        jobs = self.kubectl.items("jobs", selector=self.design.job_selector)
        names = [str(job["metadata"]["name"]) for job in jobs if not is_finished(job)]
        if names:
            self.kubectl.run("delete", "job", *names, "--wait=false")
        return names

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
