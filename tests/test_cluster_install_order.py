"""What the harness applies on a cluster, in which order, what it leaves alone and what its
teardown deletes in which order: pure functions over manifests, and kubectl recorded rather than
run (the cluster run itself is `make e2e-here`'s Strimzi stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_medpubsub import designs
from pytest_medpubsub.k8s.objects import load_documents
from pytest_medpubsub.platforms import cluster_teardown, operators
from pytest_medpubsub.platforms.cluster_deploy import split_makers_starters
from pytest_medpubsub.platforms.cluster_operators import Installed
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.project import SCALEDJOB_MANIFEST, project_dir


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}}


@pytest.mark.parametrize(
    ("objects", "first", "then"),
    [
        # The ScaledJob and KEDA's login wait for Kafka and its users.
        (
            [obj("Kafka", "medpubsub"), obj("KafkaUser", "keda"), obj("ScaledJob", "medicine"),
             obj("TriggerAuthentication", "keda-kafka"), obj("Deployment", "patient")],
            ["Kafka", "KafkaUser", "Deployment"],
            ["ScaledJob", "TriggerAuthentication"],
        ),
        # The dispatcher design: its Deployment waits, its Job template ConfigMap does not.
        (
            [obj("ConfigMap", "dispatcher-job"), obj("Deployment", "dispatcher"),
             obj("Deployment", "patient"), obj("KafkaTopic", "tabs.orders")],
            ["ConfigMap", "Deployment", "KafkaTopic"],
            ["Deployment"],
        ),
        ([], [], []),
    ],
)  # fmt: skip
def test_what_starts_the_makers_is_applied_after_the_rest(
    objects: list[dict[str, Any]], first: list[str], then: list[str]
) -> None:
    applied_first, applied_then = split_makers_starters(objects)
    assert [o["kind"] for o in applied_first] == first
    assert [o["kind"] for o in applied_then] == then
    assert "patient" not in [o["metadata"]["name"] for o in applied_then]


MANIFEST = [
    obj("CustomResourceDefinition", "kafkas.kafka.strimzi.io"),
    obj("CustomResourceDefinition", "kafkausers.kafka.strimzi.io"),
    obj("Deployment", "strimzi-cluster-operator"),
    obj("ClusterRole", "strimzi-cluster-operator-global"),
]
OURS = {operators.MANAGED_LABEL[0]: operators.MANAGED_LABEL[1]}


@pytest.mark.parametrize(
    ("on_cluster", "foreign"),
    [
        ({}, []),  # a cluster without Strimzi
        ({"kafkas.kafka.strimzi.io": OURS, "kafkausers.kafka.strimzi.io": OURS}, []),  # ours
        # Another installation's CRDs (no label, or another manager's): never applied over.
        ({"kafkas.kafka.strimzi.io": {}}, ["kafkas.kafka.strimzi.io"]),
        (
            {"kafkas.kafka.strimzi.io": OURS,
             "kafkausers.kafka.strimzi.io": {operators.MANAGED_LABEL[0]: "Helm"}},
            ["kafkausers.kafka.strimzi.io"],
        ),
    ],
)  # fmt: skip
def test_crds_of_another_installation_are_found(
    on_cluster: dict[str, dict[str, str]], foreign: list[str]
) -> None:
    assert operators.foreign_crds(MANIFEST, on_cluster.get) == foreign


def test_the_crds_applied_carry_our_label_and_nothing_else_does() -> None:
    claimed = operators.claim_crds([dict(o, metadata=dict(o["metadata"])) for o in MANIFEST])
    labelled = [o["metadata"]["name"] for o in claimed if o["metadata"].get("labels") == OURS]
    assert labelled == ["kafkas.kafka.strimzi.io", "kafkausers.kafka.strimzi.io"]


def test_uninstalling_never_deletes_a_crd() -> None:
    kept = operators.without_crds(MANIFEST)
    assert [o["kind"] for o in kept] == ["Deployment", "ClusterRole"]


@dataclass(frozen=True)
class RecordingKubectl(Kubectl):
    """kubectl that records what it would run (verb and first argument) and runs nothing."""

    calls: list[str] = field(default_factory=list)

    def run(self, *args: str, **_: Any) -> str:  # namespace, stdin and timeout do not matter
        self.calls.append(" ".join(args[:2]))
        return ""


def operator_manifest(name: str) -> str:
    return f"kind: Deployment\napiVersion: apps/v1\nmetadata:\n  name: {name}\n"


def test_the_teardown_removes_makers_starter_then_topics_then_namespace_then_operators() -> None:
    """The ScaledJob and the KafkaTopics go while KEDA and Strimzi still run to release their
    finalizers; the operators this run installed go last, newest first, and only once."""
    kubectl = RecordingKubectl()
    scaled_job = load_documents((project_dir() / SCALEDJOB_MANIFEST).read_text())
    installed: Installed = [
        (operators.STRIMZI, operator_manifest("strimzi-cluster-operator")),
        (operators.KEDA, operator_manifest("keda-operator")),
    ]

    cluster_teardown.remove_system(
        kubectl, "a cluster", designs.scaledjob.DESIGN.on_cluster(scaled_job), with_strimzi=True
    )
    cluster_teardown.uninstall_operators(kubectl, installed)
    cluster_teardown.uninstall_operators(kubectl, installed)

    assert kubectl.calls == [
        "delete scaledjob",
        "delete kafkatopics",
        "delete namespace",
        "delete --filename",  # KEDA, installed last
        "delete --filename",  # Strimzi
    ]
    assert installed == []


def test_without_strimzi_or_a_known_design_only_the_namespace_goes() -> None:
    kubectl = RecordingKubectl()
    cluster_teardown.remove_system(kubectl, "a cluster", None, with_strimzi=False)
    assert kubectl.calls == ["delete namespace"]
