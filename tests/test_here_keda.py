"""The KEDA manifest the harness installs on the cluster here: KEDA's config/minimal without the
metrics API server, the operator on the image built here, webhook/APIService patching off."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from pytest_medpubsub.here import keda, versions
from pytest_medpubsub.here.commands import HereError

OPERATOR: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "keda-operator", "namespace": "keda"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "keda-operator",
                        "image": "ghcr.io/kedacore/keda:main",
                        "imagePullPolicy": "Always",
                        "command": ["/keda"],
                        "args": ["--leader-elect", "--enable-cert-rotation=true"],
                    }
                ]
            }
        }
    },
}
MINIMAL: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}},
    {"kind": "CustomResourceDefinition", "metadata": {"name": "scaledjobs.keda.sh"}},
    {"kind": "Service", "metadata": {"name": "keda-metrics-apiserver", "namespace": "keda"}},
    {"kind": "Deployment", "metadata": {"name": "keda-metrics-apiserver", "namespace": "keda"}},
    OPERATOR,
    {"kind": "APIService", "metadata": {"name": "v1beta1.external.metrics.k8s.io"}},
]


def kinds(documents: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in documents]


def operator_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in documents if kinds([d]) == [("Deployment", "keda-operator")])
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_metrics_api_server_and_its_apiservice_are_dropped() -> None:
    kept = kinds(keda.trim(copy.deepcopy(MINIMAL), "local/keda:1"))
    assert ("Deployment", "keda-metrics-apiserver") not in kept
    assert ("APIService", "v1beta1.external.metrics.k8s.io") not in kept
    assert ("Deployment", "keda-operator") in kept
    assert ("CustomResourceDefinition", "scaledjobs.keda.sh") in kept


def test_the_operator_runs_the_local_image_without_patching_and_keeps_cert_rotation() -> None:
    container = operator_container(keda.trim(copy.deepcopy(MINIMAL), "local/keda:1"))
    assert container["image"] == "local/keda:1"
    assert container["imagePullPolicy"] == "Never"
    assert container["args"] == [
        "--leader-elect",
        "--enable-cert-rotation=true",
        "--enable-webhook-patching=false",
        "--enable-apiservice-patching=false",
    ]


def test_trimming_twice_adds_the_flags_once() -> None:
    once = keda.trim(copy.deepcopy(MINIMAL), "local/keda:1")
    twice = keda.trim(copy.deepcopy(once), "local/keda:1")
    assert operator_container(twice)["args"] == operator_container(once)["args"]


def test_a_minimal_config_without_the_operator_is_an_error() -> None:
    with pytest.raises(HereError, match="no Deployment keda-operator"):
        keda.trim([MINIMAL[0]], "local/keda:1")


def test_keda_s_own_config_minimal_renders_when_its_module_is_cached() -> None:
    try:
        rendered = keda.render(versions.KEDA)
    except HereError as error:
        pytest.skip(f"KEDA's module or kubectl is not here: {error}")
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert ("Deployment", "keda-metrics-apiserver") not in kinds(documents)
    assert ("CustomResourceDefinition", "scaledjobs.keda.sh") in kinds(documents)
    assert operator_container(documents)["image"] == versions.KEDA_IMAGE
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments] == ["keda-operator"]


def test_the_harness_applies_the_manifest_without_forcing_one_namespace() -> None:
    """KEDA's manifest has a RoleBinding in kube-system: kubectl refuses `--namespace keda` for
    it, so the harness must let the manifest name its namespaces (Strimzi's does not)."""
    from pytest_medpubsub.platforms import operators

    trimmed = yaml.safe_dump_all(keda.trim(copy.deepcopy(MINIMAL), "local/keda:1"))
    with_kube_system = (
        trimmed
        + "---\n"
        + yaml.safe_dump(
            {
                "kind": "RoleBinding",
                "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
            }
        )
    )
    assert operators._apply_namespace(operators.KEDA, with_kube_system) == ""
    unnamed = yaml.safe_dump({"kind": "Deployment", "metadata": {"name": "strimzi-operator"}})
    assert operators._apply_namespace(operators.KEDA, unnamed) == "keda"
