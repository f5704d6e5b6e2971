"""What the harness applies on a cluster, in which order, and what it leaves alone: pure
functions over manifests (the cluster run itself is `make e2e-here`'s Strimzi stage)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_medpubsub.platforms import operators
from pytest_medpubsub.platforms.cluster import split_makers_starters


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
