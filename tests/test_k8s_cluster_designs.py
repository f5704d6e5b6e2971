"""The cluster platforms under each design: which render a platform applies, and what the harness
reads from it (the group and topic of the backlog, the makers' selectors, the image names of the
dispatcher's Job template). Offline: renders only, no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medpubsub.dispatcher.launchers import COMPONENT, COMPONENT_LABEL
from pytest_medpubsub import designs
from pytest_medpubsub.k8s.designs import render_overlay as render_design
from pytest_medpubsub.k8s.dispatcher import dispatched_job_templates
from pytest_medpubsub.k8s.objects import Manifest, load_documents, of_kind
from pytest_medpubsub.k8s.render import OVERLAYS_DIR, render
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.cluster_designs import DispatcherDesign, ScaledJobDesign
from pytest_medpubsub.platforms.existing import ExistingBackend
from pytest_medpubsub.platforms.images import service_images
from pytest_medpubsub.platforms.kind import KindBackend
from pytest_medpubsub.platforms.manifests import for_cluster
from pytest_medpubsub.platforms.minikube import MinikubeBackend
from tests.conftest import PROJECT, require_kustomize


def backend_overlays(tmp_path: Path) -> set[str]:
    """Every overlay a cluster backend applies, with Strimzi or with Kafka of the user's own."""
    backends: list[KindBackend | MinikubeBackend | ExistingBackend] = [
        KindBackend(PROJECT, "medpubsub"),
        MinikubeBackend("medpubsub"),
        ExistingBackend("registry.invalid:5000", tmp_path),
        ExistingBackend(None, tmp_path, "/run/containerd.sock"),
    ]
    return {o for b in backends for o in (b.overlay, b.external_kafka_overlay)}


def test_the_scaledjob_design_applies_the_platform_overlay_itself(tmp_path: Path) -> None:
    for overlay in backend_overlays(tmp_path):
        assert designs.design("scaledjob").cluster_overlay(overlay) == overlay


def test_every_platform_overlay_has_a_dispatcher_overlay(tmp_path: Path) -> None:
    for overlay in sorted(backend_overlays(tmp_path)):
        design_overlay = designs.design("dispatcher").cluster_overlay(overlay)
        prefix = designs.dispatcher.OVERLAY_PREFIX
        assert design_overlay.startswith(prefix)
        source = PROJECT / designs.dispatcher.OVERLAYS_DIR / design_overlay.removeprefix(prefix)
        assert (source / "kustomization.yaml").exists(), (overlay, source)


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ("kind", "dispatcher-kind"),
        ("minikube", "dispatcher-kind"),
        ("existing-preloaded", "dispatcher-kind"),
        ("existing", "dispatcher-existing"),
        ("external-kafka", "dispatcher-external-kafka"),
        ("external-kafka-preloaded", "dispatcher-external-kafka-preloaded"),
    ],
)
def test_dispatcher_overlay_by_platform_overlay(overlay: str, expected: str) -> None:
    assert designs.design("dispatcher").cluster_overlay(overlay) == expected


def test_an_overlay_without_a_dispatcher_variant_is_refused_in_one_sentence() -> None:
    with pytest.raises(PlatformError, match="no overlay for 'homegrown'") as refused:
        designs.design("dispatcher").cluster_overlay("homegrown")
    assert str(refused.value).count(". ") == 0


@pytest.fixture(scope="module")
def design_renders() -> dict[str, list[Manifest]]:
    """The external-kafka overlay under each design."""
    require_kustomize()
    return {
        "dispatcher": render_design(PROJECT, "external-kafka"),
        "scaledjob": load_documents(render(PROJECT / OVERLAYS_DIR / "external-kafka")),
    }


def test_the_dispatcher_design_reads_its_group_and_labels_from_the_render(
    design_renders: dict[str, list[Manifest]],
) -> None:
    design = designs.design("dispatcher").on_cluster(design_renders["dispatcher"])
    assert isinstance(design, DispatcherDesign)
    assert (design.group, design.topic) == ("dispatcher", "tabs.orders")
    assert design.warm_makers() == 0
    # The selectors find what the launcher labels (launchers.job_manifest).
    assert f"{COMPONENT_LABEL}={COMPONENT}" in design.job_selector.split(",")
    assert f"{COMPONENT_LABEL}={COMPONENT}" in design.maker_selector.split(",")
    (_, _, job), *_ = dispatched_job_templates(design_renders["dispatcher"])
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert f"app.kubernetes.io/name={pod_labels['app.kubernetes.io/name']}" in (
        design.maker_selector.split(",")
    )


def test_the_scaledjob_design_reads_the_trigger(design_renders: dict[str, list[Manifest]]) -> None:
    design = designs.design("scaledjob").on_cluster(design_renders["scaledjob"])
    assert isinstance(design, ScaledJobDesign)
    assert (design.group, design.topic) == ("medicine", "tabs.orders")
    assert design.warm_makers() == design.spec.scaling.min_rc >= 1


def test_a_design_missing_from_its_render_is_a_platform_error(
    design_renders: dict[str, list[Manifest]],
) -> None:
    with pytest.raises(PlatformError, match="no dispatcher Deployment"):
        designs.design("dispatcher").on_cluster(design_renders["scaledjob"])
    with pytest.raises(PlatformError):
        designs.design("scaledjob").on_cluster(design_renders["dispatcher"])


def test_the_dispatchers_job_template_gets_the_runs_image_names(
    design_renders: dict[str, list[Manifest]],
) -> None:
    objects = design_renders["dispatcher"]
    images = service_images(objects)
    # The maker image is built although only the template (a ConfigMap's file) names it.
    assert sorted(images) == ["dispatcher", "medicine", "patient"]
    pushed = {image: f"registry.invalid:5000/{image}" for image in images.values()}
    prepared = for_cluster(objects, advertised_host=None, images=pushed)
    (config_map, key, _), *_ = dispatched_job_templates(prepared)
    job = yaml.safe_load(config_map["data"][key])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.invalid:5000/{images['medicine']}"
    dispatcher = next(
        d for d in of_kind(prepared, "Deployment") if d["metadata"]["name"] == "dispatcher"
    )
    assert dispatcher["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "registry.invalid:5000/"
    )
    # The copy is changed, not the render.
    (original, _, _), *_ = dispatched_job_templates(objects)
    assert "registry.invalid" not in original["data"][key]


@pytest.mark.parametrize(("design", "keda"), [("scaledjob", True), ("dispatcher", False)])
def test_only_the_scaledjob_design_installs_keda(design: str, keda: bool) -> None:
    assert designs.design(design).needs_keda is keda
