"""The Strimzi stage's inputs on the cluster here: the install manifest pointed at the images
built here, what a missing cache says, the storage Kafka claims, and the stage's evidence."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub.here import e2e_strimzi, evidence, storage, strimzi
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.here.layout import Layout

UPSTREAM_ENV: list[dict[str, Any]] = [
    {"name": "STRIMZI_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "STRIMZI_KAFKA_IMAGES", "value": "4.3.1=upstream/kafka:1.2.0-kafka-4.3.1\n"},
    {"name": "STRIMZI_DEFAULT_USER_OPERATOR_IMAGE", "value": "upstream/operator:1.2.0"},
]
INSTALL: list[dict[str, Any]] = [
    {"kind": "ServiceAccount", "metadata": {"name": "strimzi-cluster-operator"}},
    {"kind": "CustomResourceDefinition", "metadata": {"name": "kafkas.kafka.strimzi.io"}},
    {
        "kind": "Deployment",
        "metadata": {"name": "strimzi-cluster-operator"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "strimzi-cluster-operator", "image": "upstream/operator:1.2.0",
             "env": copy.deepcopy(UPSTREAM_ENV)}
        ]}}},
    },
]  # fmt: skip


def operator_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_operator_and_every_operand_run_the_local_images_never_pulled() -> None:
    container = operator_container(strimzi.localize(copy.deepcopy(INSTALL)))
    env = env_of(container)
    assert (container["image"], container["imagePullPolicy"]) == (strimzi.OPERATOR_IMAGE, "Never")
    assert env["STRIMZI_IMAGE_PULL_POLICY"] == "Never"
    for key in ("TOPIC", "USER"):
        assert env[f"STRIMZI_DEFAULT_{key}_OPERATOR_IMAGE"] == strimzi.OPERATOR_IMAGE
    assert env["STRIMZI_DEFAULT_KAFKA_INIT_IMAGE"] == strimzi.OPERATOR_IMAGE
    assert env["STRIMZI_NAMESPACE"] == UPSTREAM_ENV[0]["valueFrom"]  # the rest stays as released
    assert [e["name"] for e in container["env"]].count("STRIMZI_KAFKA_IMAGES") == 1


@pytest.mark.parametrize(
    "key",
    ["STRIMZI_KAFKA_IMAGES", "STRIMZI_KAFKA_CONNECT_IMAGES", "STRIMZI_KAFKA_MIRROR_MAKER_2_IMAGES"],
)
def test_every_supported_kafka_version_has_the_local_image(key: str) -> None:
    """The operator refuses to start when a supported version lacks an image."""
    value = env_of(operator_container(strimzi.localize(copy.deepcopy(INSTALL))))[key]
    mapping = dict(line.split("=", 1) for line in value.splitlines())
    assert mapping == {version: strimzi.KAFKA_IMAGE for version in strimzi.SUPPORTED_KAFKA}


def test_an_install_without_the_operator_deployment_is_an_error() -> None:
    with pytest.raises(HereError, match="no Deployment strimzi-cluster-operator"):
        strimzi.localize(copy.deepcopy(INSTALL[:2]))


def test_a_folder_that_is_not_a_strimzi_checkout_says_what_is_needed(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(strimzi.StrimziMissing, match=r"github\.com/strimzi/strimzi-kafka-operator"):
        strimzi.install_documents(tmp_path)


def test_strimzi_s_own_install_files_render_when_a_checkout_is_given() -> None:
    """With STRIMZI_SRC (a checkout or git directory with tag 1.2.0), the real files."""
    source = os.environ.get("STRIMZI_SRC")
    if not source:
        pytest.skip("STRIMZI_SRC names no Strimzi checkout here")
    documents = [d for d in yaml.safe_load_all(strimzi.render(Path(source))) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("CustomResourceDefinition", "kafkanodepools.kafka.strimzi.io") in kinds
    assert operator_container(documents)["image"] == strimzi.OPERATOR_IMAGE


def test_a_cache_without_images_or_manifest_names_what_it_lacks(tmp_path: Path) -> None:
    cache = strimzi.StrimziCache(tmp_path)
    reason = cache.missing()
    assert reason is not None
    assert "make strimzi-here STRIMZI_SRC=DIR" in reason
    assert "install.yaml" in reason
    assert "strimzi-operator-1.2.0.tar" in reason
    for path in (*cache.archives, cache.manifest):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert cache.missing() is None


def test_no_source_and_no_cached_manifest_is_one_sentence(tmp_path: Path) -> None:
    layout = Layout(root=tmp_path, sockets=tmp_path / "sockets")
    with pytest.raises(strimzi.StrimziMissing, match="give STRIMZI_SRC=DIR"):
        strimzi.ensure(layout, None)


def test_a_skipped_stage_says_why_and_records_it(tmp_path: Path) -> None:
    from pytest_medpubsub.here.state import ClusterState

    layout = Layout(root=tmp_path, sockets=tmp_path / "sockets")
    figures: dict[str, object] = {}
    status = e2e_strimzi.stage(
        layout, ClusterState(), tmp_path / "report", {"KUBECONFIG": "unused"}, figures
    )
    assert status == 0
    assert "make strimzi-here" in str(figures["strimzi_skipped"])


def test_the_storage_class_is_the_default_and_every_volume_is_on_the_node() -> None:
    layout = Layout(root=Path("cache"), sockets=Path("sockets"))
    found = storage.objects(layout)
    storage_class, volumes = found[0], found[1:]
    annotations = storage_class["metadata"]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert len(volumes) == storage.VOLUMES
    for volume, path in zip(volumes, storage.volume_dirs(layout), strict=True):
        assert volume["spec"]["local"]["path"] == str(path)
        assert volume["spec"]["storageClassName"] == storage.STORAGE_CLASS
        assert path.is_relative_to(layout.run)  # `down` removes the run folder


def test_the_evidence_shows_strimzi_s_pod_set_and_ready_users() -> None:
    pods = {
        "items": [
            {
                "metadata": {
                    "name": "medpubsub-dual-role-0",
                    "ownerReferences": [{"kind": "StrimziPodSet", "name": "medpubsub-dual-role"}],
                },
                "status": {"phase": "Running"},
            }
        ]
    }
    users = {"items": [
        {"metadata": {"name": "keda"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "patient"}, "status": {"conditions": [
            {"type": "NotReady", "status": "True"}]}},
    ]}  # fmt: skip
    summary = evidence.strimzi(pods, users)
    assert summary["kafka_pod_owner_kinds"] == {"StrimziPodSet": 1}
    assert summary["kafka_users"] == {"keda": True, "patient": False}
    assert summary["kafka_users_ready"] is False
