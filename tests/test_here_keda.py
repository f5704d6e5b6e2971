"""The KEDA manifest the harness installs on the cluster here: KEDA's release manifest
(config/default of its module) with its three Deployments on the images built here."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from pytest_medpubsub.here import keda, versions
from pytest_medpubsub.here.commands import HereError


def deployment(name: str, container: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "keda"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": f"upstream/{container}:latest",
                            "imagePullPolicy": "Always",
                            "args": ["--zap-log-level=info"],
                        }
                    ]
                }
            }
        },
    }


DEFAULT: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}},
    {"kind": "CustomResourceDefinition", "metadata": {"name": "scaledjobs.keda.sh"}},
    deployment("keda-operator", "keda-operator"),
    deployment("keda-metrics-apiserver", "keda-metrics-apiserver"),
    deployment("keda-admission", "keda-admission-webhooks"),
    {"kind": "APIService", "metadata": {"name": "v1beta1.external.metrics.k8s.io"}},
]


def kinds(documents: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in documents]


def containers(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        container["name"]: container
        for document in documents
        if document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    }


def test_nothing_of_the_release_is_dropped() -> None:
    assert kinds(keda.localize(copy.deepcopy(DEFAULT), keda.IMAGES)) == kinds(DEFAULT)


@pytest.mark.parametrize(
    ("container", "image"),
    [
        ("keda-operator", versions.KEDA_IMAGE),
        ("keda-metrics-apiserver", versions.KEDA_METRICS_IMAGE),
        ("keda-admission-webhooks", versions.KEDA_WEBHOOKS_IMAGE),
    ],
)
def test_each_deployment_runs_its_local_image_and_keeps_its_args(
    container: str, image: str
) -> None:
    localized = containers(keda.localize(copy.deepcopy(DEFAULT), keda.IMAGES))[container]
    assert (localized["image"], localized["imagePullPolicy"]) == (image, "Never")
    assert localized["args"] == ["--zap-log-level=info"]


@pytest.mark.parametrize("missing", ["keda-operator", "keda-metrics-apiserver", "keda-admission"])
def test_a_release_without_one_of_the_three_deployments_is_an_error(missing: str) -> None:
    documents = [d for d in copy.deepcopy(DEFAULT) if d["metadata"]["name"] != missing]
    with pytest.raises(HereError, match=f"no Deployment {missing}"):
        keda.localize(documents, keda.IMAGES)


def test_every_image_built_here_is_placed() -> None:
    with pytest.raises(HereError, match="no container keda-extra"):
        keda.localize(copy.deepcopy(DEFAULT), {**keda.IMAGES, "keda-extra": "local/x:1"})


def test_the_images_built_here_are_the_ones_the_manifest_runs() -> None:
    assert set(keda.IMAGES.values()) == {image.tag for image in versions.keda_images()}


@pytest.fixture(scope="module")
def rendered_release() -> list[dict[str, Any]]:
    """KEDA's release, rendered once for the module: kustomize over its Go module takes seconds,
    which is also why the tests that read it are `slow` (left out of `make check`)."""
    try:
        rendered = keda.render(versions.KEDA)
    except HereError as error:
        pytest.skip(f"KEDA's module or kubectl is not here: {error}")
    return [d for d in yaml.safe_load_all(rendered) if d]


@pytest.mark.slow
def test_keda_s_release_renders_with_the_three_local_images(
    rendered_release: list[dict[str, Any]],
) -> None:
    documents = rendered_release
    assert ("CustomResourceDefinition", "scaledjobs.keda.sh") in kinds(documents)
    assert ("APIService", "v1beta1.external.metrics.k8s.io") in kinds(documents)
    assert {name: c["image"] for name, c in containers(documents).items()} == keda.IMAGES


@pytest.mark.slow
def test_the_harness_waits_for_exactly_the_release_s_deployments(
    rendered_release: list[dict[str, Any]],
) -> None:
    """The Deployments the harness waits for (and takes as "installed already") are those of
    KEDA's release manifest, config/default of its module; the Helm chart's names differ."""
    from pytest_medpubsub.platforms import operators

    documents = rendered_release
    released = tuple(d["metadata"]["name"] for d in documents if d["kind"] == "Deployment")
    assert sorted(operators.KEDA.deployments) == sorted(released)
    assert sorted(keda.DEPLOYMENTS) == sorted(released)
    manifest = yaml.safe_dump_all(documents)
    assert operators.as_given(operators.KEDA, manifest).deployments == released


def test_the_harness_applies_the_manifest_without_forcing_one_namespace() -> None:
    """KEDA's manifest has a RoleBinding in kube-system: kubectl refuses `--namespace keda` for
    it, so the harness must let the manifest name its namespaces (Strimzi's does not)."""
    from pytest_medpubsub.platforms import operators

    trimmed = yaml.safe_dump_all(keda.localize(copy.deepcopy(DEFAULT), keda.IMAGES))
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
