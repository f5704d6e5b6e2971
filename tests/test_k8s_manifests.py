"""Offline proof of the Kubernetes manifests: every overlay renders, validates against the
Kubernetes and CRD schemas, meets the security policy and is wired together; and each check
fails, naming the object and the rule, when a manifest is broken on purpose."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub.k8s.check import (
    check_objects,
    check_project,
    harness_topics,
    main,
)
from pytest_medpubsub.k8s.objects import Manifest, kafka_listener, load_documents, node_ports
from pytest_medpubsub.k8s.render import render_all
from pytest_medpubsub.k8s.scaledjob_wiring import orders_per_maker
from pytest_medpubsub.k8s.schemas import CrdSchemas, schema_findings
from pytest_medpubsub.k8s.wiring import external_listener_findings
from tests.conftest import PROJECT, find, require_kustomize, rule_hit

OVERLAYS = ("existing", "existing-preloaded", "external-kafka", "external-kafka-preloaded",
            "kind", "minikube")  # fmt: skip
EXTERNAL_KAFKA = ("external-kafka", "external-kafka-preloaded")
STRIMZI = tuple(overlay for overlay in OVERLAYS if overlay not in EXTERNAL_KAFKA)
KINDS = ["Namespace", "Deployment", "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaTopic",
         "KafkaTopic", "ScaledJob"]  # fmt: skip
EXTERNAL_KINDS = ["Namespace", "Deployment", "Service", "EndpointSlice", "ScaledJob"]
# The overlays with k8s/components/secure-kafka: a KafkaUser per client, KEDA's login.
SECURED = ("existing", "existing-preloaded", "kind", "minikube")
SECURED_KINDS = [*KINDS, "KafkaUser", "KafkaUser", "KafkaUser", "KafkaUser", "ConfigMap",
                 "TriggerAuthentication"]  # fmt: skip


@pytest.fixture
def kind(renders: dict[str, list[Manifest]]) -> list[Manifest]:
    """A private copy of the kind render, to break."""
    return copy.deepcopy(renders["kind"])


# --------------------------------------------------------------------------- the manifests as built


def test_every_overlay_renders_everything_a_cluster_gets(
    renders: dict[str, list[Manifest]],
) -> None:
    assert tuple(renders) == OVERLAYS
    for overlay, objects in renders.items():
        expected = EXTERNAL_KINDS if overlay in EXTERNAL_KAFKA else KINDS
        expected = SECURED_KINDS if overlay in SECURED else expected
        assert sorted(o["kind"] for o in objects) == sorted(expected), overlay
        assert {o["metadata"].get("namespace", "medpubsub") for o in objects} == {"medpubsub"}


def test_make_manifests_writes_one_file_per_overlay(tmp_path: Path) -> None:
    require_kustomize()
    written = render_all(PROJECT, tmp_path)
    assert sorted(written) == list(OVERLAYS)
    for overlay, path in written.items():
        topics = 0 if overlay in EXTERNAL_KAFKA else 3
        assert path.read_text().count("kind: KafkaTopic") == topics, overlay


def test_the_project_passes_every_offline_check(crds: CrdSchemas) -> None:
    """Security, wiring, kind ports and the Dockerfile always; CRD schemas when they are at hand."""
    require_kustomize()
    assert [str(f) for f in check_project(PROJECT, crds)] == []


def test_builtin_objects_are_valid_for_kubernetes_1_30(renders: dict[str, list[Manifest]]) -> None:
    for objects in renders.values():
        assert schema_findings(objects, crds=None) == []


def test_strimzi_and_keda_objects_match_their_crds(
    renders: dict[str, list[Manifest]], crds: CrdSchemas
) -> None:
    for objects in renders.values():
        assert schema_findings(objects, crds) == []


def test_the_check_command_prints_no_finding(capsys: pytest.CaptureFixture[str]) -> None:
    require_kustomize()
    assert main(["--project", str(PROJECT)]) == 0
    assert "all offline checks passed" in capsys.readouterr().out


def test_the_host_reaches_kafka_through_fixed_node_ports(
    renders: dict[str, list[Manifest]],
) -> None:
    for overlay in STRIMZI:
        listener = kafka_listener(find(renders[overlay], "Kafka", "medpubsub"), "external")
        assert listener["type"] == "nodeport", overlay
        assert node_ports(listener) == [32100, 32101], overlay
    kind_broker = kafka_listener(find(renders["kind"], "Kafka", "medpubsub"), "external")
    assert kind_broker["configuration"]["brokers"][0]["advertisedHost"] == "127.0.0.1"


def test_images_are_loaded_on_kind_and_minikube_and_pulled_on_existing(
    renders: dict[str, list[Manifest]],
) -> None:
    """Pulled only from a registry (existing, external-kafka); loaded into the node elsewhere."""
    expected = {"kind": "Never", "minikube": "Never", "existing": "Always",
                "existing-preloaded": "Never", "external-kafka": "Always",
                "external-kafka-preloaded": "Never"}  # fmt: skip
    for overlay, objects in renders.items():
        patient = find(objects, "Deployment", "patient")["spec"]["template"]["spec"]
        maker = find(objects, "ScaledJob", "medicine")["spec"]["jobTargetRef"]["template"]["spec"]
        policies = {c["imagePullPolicy"] for c in [*patient["containers"], *maker["containers"]]}
        assert policies == {expected[overlay]}, overlay


def test_the_clusters_get_the_scaledjob_the_local_platform_reads(
    renders: dict[str, list[Manifest]],
) -> None:
    """Only the image pull policy differs between keda/medicine-scaledjob.yaml and a render, and
    on a secured render the maker's and KEDA's login (the local platform sets its own)."""
    source = load_documents((PROJECT / "keda/medicine-scaledjob.yaml").read_text())[0]
    for overlay, objects in renders.items():
        rendered = copy.deepcopy(find(objects, "ScaledJob", "medicine"))
        pod = rendered["spec"]["jobTargetRef"]["template"]["spec"]
        pod["containers"][0]["imagePullPolicy"] = "IfNotPresent"
        if overlay in SECURED:
            env = pod["containers"][0]["env"]
            pod["containers"][0]["env"] = [
                e
                for e in env
                if not e["name"].startswith(("MEDPUBSUB_KAFKA_SECURITY_", "MEDPUBSUB_KAFKA_SASL_"))
            ]
            assert rendered["spec"]["triggers"][0].pop("authenticationRef") == {
                "name": "keda-kafka"
            }
        assert rendered == source, overlay


# --------------------------------------------------------------------------- each check can fail

Mutation = Callable[[list[Manifest]], None]
PATIENT = "Deployment/medpubsub/patient"
MAKERS = "ScaledJob/medpubsub/medicine"
KAFKA = "Kafka/medpubsub/medpubsub"
POOL = "KafkaNodePool/medpubsub/dual-role"


def patient_container(objects: list[Manifest]) -> dict[str, Any]:
    container: dict[str, Any] = find(objects, "Deployment", "patient")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def maker_pod(objects: list[Manifest]) -> dict[str, Any]:
    pod: dict[str, Any] = find(objects, "ScaledJob", "medicine")["spec"]["jobTargetRef"][
        "template"
    ]["spec"]
    return pod


def trigger(objects: list[Manifest]) -> dict[str, Any]:
    metadata: dict[str, Any] = find(objects, "ScaledJob", "medicine")["spec"]["triggers"][0][
        "metadata"
    ]
    return metadata


def set_env(container: dict[str, Any], name: str, value: str) -> None:
    entries = [e for e in container["env"] if e["name"] != name]
    container["env"] = [*entries, {"name": name, "value": value}]


BROKEN: list[tuple[str, Mutation, str, str]] = [
    # missing fields
    ("no-limits", lambda o: patient_container(o)["resources"].pop("limits"), PATIENT,
     "resources.limits"),
    ("no-selector", lambda o: find(o, "Deployment", "patient")["spec"].pop("selector"), PATIENT,
     "schema"),
    ("no-image", lambda o: maker_pod(o)["containers"][0].pop("image"), MAKERS, "image.pinned"),
    ("no-pool-resources", lambda o: find(o, "KafkaNodePool", "dual-role")["spec"].pop("resources"),
     POOL, "resources.requests"),
    # labels
    ("wrong-part-of", lambda o: find(o, "Deployment", "patient")["spec"]["template"]["metadata"][
        "labels"].update({"app.kubernetes.io/part-of": "pharmacy"}), PATIENT, "labels.pod"),
    ("no-name-label", lambda o: find(o, "ScaledJob", "medicine")["metadata"]["labels"].pop(
        "app.kubernetes.io/name"), MAKERS, "labels.object"),
    ("topic-of-another-cluster", lambda o: find(o, "KafkaTopic", "tabs-dlq")["metadata"][
        "labels"].update({"strimzi.io/cluster": "other"}), "KafkaTopic/medpubsub/tabs-dlq",
     "wiring.topics"),
    ("selector-mismatch", lambda o: find(o, "Deployment", "patient")["spec"]["selector"][
        "matchLabels"].update({"app.kubernetes.io/name": "patients"}), PATIENT, "wiring.pods"),
    # topic names
    ("trigger-topic", lambda o: trigger(o).update({"topic": "tabs.order"}), MAKERS,
     "wiring.trigger"),
    ("no-trigger-topic", lambda o: trigger(o).pop("topic"), MAKERS, "wiring.trigger"),
    ("renamed-topic", lambda o: find(o, "KafkaTopic", "tabs-deliveries")["spec"].update(
        {"topicName": "tabs.delivery"}), PATIENT, "wiring.topics"),
    ("service-topic", lambda o: set_env(patient_container(o), "MEDPUBSUB_ORDERS_TOPIC",
                                        "orders"), PATIENT, "wiring.topics"),
    # security
    ("privileged", lambda o: patient_container(o)["securityContext"].update({"privileged": True}),
     PATIENT, "security.privileged"),
    ("no-container-security", lambda o: maker_pod(o)["containers"][0].pop("securityContext"),
     MAKERS, "security.readOnlyRootFilesystem"),
    ("no-pod-security", lambda o: maker_pod(o).pop("securityContext"), MAKERS,
     "security.runAsNonRoot"),
    ("escalation", lambda o: patient_container(o)["securityContext"].update(
        {"allowPrivilegeEscalation": True}), PATIENT, "security.allowPrivilegeEscalation"),
    ("capabilities", lambda o: patient_container(o)["securityContext"]["capabilities"].update(
        {"drop": ["NET_RAW"]}), PATIENT, "security.capabilities"),
    ("kafka-seccomp", lambda o: find(o, "KafkaNodePool", "dual-role")["spec"]["template"]["pod"][
        "securityContext"].pop("seccompProfile"), POOL, "security.seccompProfile"),
    ("host-network", lambda o: maker_pod(o).update({"hostNetwork": True}), MAKERS,
     "security.hostNamespaces"),
    ("latest", lambda o: patient_container(o).update({"image": "medpubsub/patient:latest"}),
     PATIENT, "image.pinned"),
    # group, bootstrap, scale
    ("trigger-group", lambda o: trigger(o).update({"consumerGroup": "medicines"}), MAKERS,
     "wiring.group"),
    ("maker-group", lambda o: set_env(maker_pod(o)["containers"][0], "MEDICINE_GROUP_ID",
                                      "makers"), MAKERS, "wiring.group"),
    ("trigger-bootstrap", lambda o: trigger(o).update({"bootstrapServers": "kafka:9092"}), MAKERS,
     "wiring.bootstrap"),
    ("patient-bootstrap", lambda o: set_env(patient_container(o), "MEDPUBSUB_KAFKA_BOOTSTRAP",
                                            "medpubsub-kafka-bootstrap:9093"), PATIENT,
     "wiring.bootstrap"),
    ("too-many-makers", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"maxReplicaCount": 100}), MAKERS, "wiring.partitions"),
    ("a-member-without-partition", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"maxReplicaCount": 41}), MAKERS, "wiring.partitions"),
    ("no-room-to-scale", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"maxReplicaCount": 2}), MAKERS, "wiring.partitions"),
    ("overshooting-strategy", lambda o: find(o, "ScaledJob", "medicine")["spec"][
        "scalingStrategy"].update({"strategy": "custom", "customScalingQueueLengthDeduction": -8,
                                   "customScalingRunningJobPercentage": "1"}), MAKERS,
     "wiring.partitions"),
    ("percentage-below-one", lambda o: find(o, "ScaledJob", "medicine")["spec"][
        "scalingStrategy"].update({"strategy": "custom",
                                   "customScalingRunningJobPercentage": "0.5"}), MAKERS,
     "wiring.partitions"),
    ("few-partitions", lambda o: find(o, "KafkaTopic", "tabs-orders")["spec"].update(
        {"partitions": 6}), MAKERS, "wiring.partitions"),
    ("job-storm", lambda o: trigger(o).update({"offsetResetPolicy": "latest"}), MAKERS,
     "wiring.trigger"),
    ("more-lag-than-a-maker-holds", lambda o: trigger(o).update({"lagThreshold": "13"}), MAKERS,
     "wiring.capacity"),
    ("less-lag-than-a-maker-holds", lambda o: trigger(o).update({"lagThreshold": "8"}), MAKERS,
     "wiring.capacity"),
    ("activation-below-the-floor", lambda o: trigger(o).update(
        {"activationLagThreshold": "8"}), MAKERS, "wiring.capacity"),
    ("activation-above-the-floor", lambda o: trigger(o).update(
        {"activationLagThreshold": "40"}), MAKERS, "wiring.capacity"),
    ("too-few-workers", lambda o: set_env(maker_pod(o)["containers"][0], "MEDICINE_MAX_WORKERS",
                                          "200"), MAKERS, "wiring.capacity"),
    ("one-order-at-a-time", lambda o: set_env(maker_pod(o)["containers"][0],
                                              "MEDICINE_MAX_ORDERS_IN_FLIGHT", "1"), MAKERS,
     "wiring.capacity"),
    ("floor-counted-twice", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"scalingStrategy": {"strategy": "default"}}), MAKERS, "wiring.capacity"),
    ("deduction-not-the-floor", lambda o: find(o, "ScaledJob", "medicine")["spec"][
        "scalingStrategy"].update({"customScalingQueueLengthDeduction": 1}), MAKERS,
     "wiring.capacity"),
    ("running-jobs-over-counted", lambda o: find(o, "ScaledJob", "medicine")["spec"][
        "scalingStrategy"].update({"customScalingRunningJobPercentage": "2"}), MAKERS,
     "wiring.capacity"),
    ("cold-start", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"minReplicaCount": 0}), MAKERS, "wiring.capacity"),
    ("floor-replaced-at-rest", lambda o: set_env(maker_pod(o)["containers"][0],
                                                 "MEDICINE_WARM_MAKERS", "0"), MAKERS,
     "wiring.warm"),
    ("warm-above-the-floor", lambda o: set_env(maker_pod(o)["containers"][0],
                                               "MEDICINE_WARM_MAKERS", "3"), MAKERS,
     "wiring.warm"),
    ("warm-until-the-deadline", lambda o: set_env(maker_pod(o)["containers"][0],
                                                  "MEDICINE_WARM_SECONDS", "3590"), MAKERS,
     "wiring.warm"),
    ("bad-trigger-value", lambda o: trigger(o).update({"lagThreshold": "one"}), MAKERS,
     "wiring.trigger"),
    ("too-fast-tabs", lambda o: set_env(maker_pod(o)["containers"][0], "MEDICINE_TAB_SECONDS",
                                        "1.5"), MAKERS, "wiring.settings"),
    ("restarting-job", lambda o: maker_pod(o).update({"restartPolicy": "Always"}), MAKERS,
     "wiring.pods"),
    ("no-kraft-pool", lambda o: find(o, "KafkaNodePool", "dual-role")["spec"].update(
        {"roles": ["broker"]}), KAFKA, "wiring.kafka"),
    ("ephemeral-broker", lambda o: find(o, "KafkaNodePool", "dual-role")["spec"].update(
        {"storage": {"type": "ephemeral"}}), POOL, "wiring.storage"),
    ("jbod-with-an-ephemeral-volume", lambda o: find(o, "KafkaNodePool", "dual-role")[
        "spec"].update({"storage": {"type": "jbod", "volumes": [
            {"id": 0, "type": "persistent-claim", "size": "1Gi"},
            {"id": 1, "type": "ephemeral"}]}}), POOL, "wiring.storage"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "obj", "rule"),
    [pytest.param(mutate, obj, rule, id=name) for name, mutate, obj, rule in BROKEN],
)
def test_a_broken_manifest_is_reported_by_object_and_rule(
    kind: list[Manifest], mutate: Mutation, obj: str, rule: str
) -> None:
    assert check_objects(kind, crds=None) == []
    mutate(kind)
    rule_hit(check_objects(kind, crds=None), obj, rule)


CRD_BROKEN: list[tuple[str, Mutation, str]] = [
    ("kafka-without-listeners", lambda o: find(o, "Kafka", "medpubsub")["spec"]["kafka"].pop(
        "listeners"), KAFKA),
    ("zookeeper-era-field", lambda o: find(o, "Kafka", "medpubsub")["spec"]["kafka"].update(
        {"replicas": 1}), KAFKA),
    ("typo-in-scaledjob", lambda o: find(o, "ScaledJob", "medicine")["spec"].update(
        {"pollingIntervall": 1}), MAKERS),
    ("string-partitions", lambda o: find(o, "KafkaTopic", "tabs-orders")["spec"].update(
        {"partitions": "40"}), "KafkaTopic/medpubsub/tabs-orders"),
    ("old-api", lambda o: find(o, "KafkaNodePool", "dual-role").update(
        {"apiVersion": "kafka.strimzi.io/v1beta2"}), POOL),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "obj"), [pytest.param(mutate, obj, id=name) for name, mutate, obj in CRD_BROKEN]
)
def test_a_custom_object_breaking_its_crd_is_reported(
    kind: list[Manifest], crds: CrdSchemas, mutate: Mutation, obj: str
) -> None:
    mutate(kind)
    rule_hit(schema_findings(kind, crds), obj, "schema")


def test_kind_must_map_the_node_ports_the_broker_advertises(kind: list[Manifest]) -> None:
    config = yaml.safe_load((PROJECT / "k8s/overlays/kind/kind-config.yaml").read_text())
    assert external_listener_findings(kind, config) == []
    config["nodes"][0]["extraPortMappings"][1]["hostPort"] = 30000
    rule_hit(external_listener_findings(kind, config), KAFKA, "wiring.external")


# --------------------------------------------------------------------------- a Kafka of one's own

SERVICE = "Service/medpubsub/medpubsub-kafka-bootstrap"
SLICE = "EndpointSlice/medpubsub/medpubsub-kafka-bootstrap-external"


@pytest.fixture
def external(renders: dict[str, list[Manifest]]) -> list[Manifest]:
    """A private copy of the bring-your-own-Kafka render (images loaded into the node), to break."""
    return copy.deepcopy(renders["external-kafka-preloaded"])


@pytest.fixture(scope="module")
def topics() -> list[Manifest]:
    return harness_topics(PROJECT)


def test_an_external_kafka_stands_behind_the_bootstrap_service_strimzi_would_create(
    renders: dict[str, list[Manifest]],
) -> None:
    """Service port 9092 (what every client dials) leads to the slice's port of the same name."""
    for overlay in EXTERNAL_KAFKA:
        objects = renders[overlay]
        service = find(objects, "Service", "medpubsub-kafka-bootstrap")
        assert "selector" not in service["spec"]
        (port,) = service["spec"]["ports"]
        assert port["port"] == 9092
        endpoint_slice = find(objects, "EndpointSlice", "medpubsub-kafka-bootstrap-external")
        assert endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] == (
            "medpubsub-kafka-bootstrap"
        )
        assert [p["name"] for p in endpoint_slice["ports"]] == [port["name"]]
        bootstrap = trigger(objects)["bootstrapServers"]
        assert bootstrap == "medpubsub-kafka-bootstrap.medpubsub.svc:9092"
        assert not [o for o in objects if o["apiVersion"].startswith("kafka.strimzi.io/")]


def add_topic(objects: list[Manifest]) -> None:
    objects.append({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic",
                    "metadata": {"name": "left-over", "namespace": "medpubsub", "labels": {
                        "app.kubernetes.io/name": "x", "app.kubernetes.io/part-of": "medpubsub"}},
                    "spec": {"partitions": 1}})  # fmt: skip


def endpoint_slice(objects: list[Manifest]) -> dict[str, Any]:
    return find(objects, "EndpointSlice", "medpubsub-kafka-bootstrap-external")


EXTERNAL_BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("service-with-selector", lambda o: find(o, "Service", "medpubsub-kafka-bootstrap")[
        "spec"].update({"selector": {"app.kubernetes.io/name": "kafka"}}), SERVICE,
     "wiring.external-kafka"),
    ("service-on-another-port", lambda o: find(o, "Service", "medpubsub-kafka-bootstrap")[
        "spec"]["ports"][0].update({"port": 9093}), MAKERS, "wiring.bootstrap"),
    ("slice-of-another-service", lambda o: endpoint_slice(o)["metadata"]["labels"].update(
        {"kubernetes.io/service-name": "kafka"}), SERVICE, "wiring.external-kafka"),
    ("slice-owned-by-the-controller", lambda o: endpoint_slice(o)["metadata"]["labels"].pop(
        "endpointslice.kubernetes.io/managed-by"), SLICE, "wiring.external-kafka"),
    ("slice-port-renamed", lambda o: endpoint_slice(o)["ports"][0].update({"name": "kafka"}),
     SLICE, "wiring.external-kafka"),
    ("slice-with-a-host-name", lambda o: endpoint_slice(o)["endpoints"][0].update(
        {"addresses": ["kafka.invalid"]}), SLICE, "wiring.external-kafka"),
    ("fqdn-slice", lambda o: endpoint_slice(o).update({"addressType": "FQDN"}), SLICE,
     "wiring.external-kafka"),
    ("no-endpoints", lambda o: endpoint_slice(o).update({"endpoints": []}), SLICE,
     "wiring.external-kafka"),
    ("strimzi-topic-left", add_topic, "KafkaTopic/medpubsub/left-over", "wiring.external-kafka"),
    ("patient-elsewhere", lambda o: set_env(patient_container(o), "MEDPUBSUB_KAFKA_BOOTSTRAP",
                                            "kafka.invalid:9092"), PATIENT, "wiring.bootstrap"),
    ("slice-typo", lambda o: endpoint_slice(o)["endpoints"][0].update({"adresses": ["1.2.3.4"]}),
     SLICE, "schema"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "obj", "rule"),
    [pytest.param(mutate, obj, rule, id=name) for name, mutate, obj, rule in EXTERNAL_BROKEN],
)
def test_a_broken_external_kafka_render_is_reported_by_object_and_rule(
    external: list[Manifest], topics: list[Manifest], mutate: Mutation, obj: str, rule: str
) -> None:
    assert check_objects(external, None, topics) == []
    mutate(external)
    rule_hit(check_objects(external, None, topics), obj, rule)


def test_an_external_kafka_needs_the_topics_the_services_use(external: list[Manifest]) -> None:
    """Without the harness's topics nothing provides tabs.orders: the wiring says so."""
    rule_hit(check_objects(external, None, external_topics=[]), PATIENT, "wiring.topics")


@pytest.mark.parametrize(
    ("max_workers", "orders"),
    [(240, 12), (30, 1), (10, 1), (60, 3), (600, 30), (1000, 51)],
)
def test_a_maker_holds_its_workers_over_the_mean_order_with_headroom(
    max_workers: int, orders: int
) -> None:
    assert orders_per_maker(max_workers) == orders
