"""The render a cluster gets, and the values only the run knows.

`build/manifests/<overlay>.yaml` (rendered again when missing or older than k8s/ and keda/) is
what is applied. Three things are known only at run time and set here, on copies of the objects:
the host the Kafka external listener advertises (minikube's IP, an existing cluster's node), the
image names (a registry prefix for an existing cluster), and the number of patients the platform
starts with (none: scenarios scale them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_medpubsub.k8s.objects import (
    EXTERNAL_LISTENER,
    Manifest,
    dig,
    kafka_listener,
    load_documents,
    node_ports,
    of_kind,
    pod_shapes,
)
from pytest_medpubsub.k8s.render import RenderError, is_stale, render_all
from pytest_medpubsub.platforms.base import PlatformError

RENDER_DIR = Path("build/manifests")
PATIENT_DEPLOYMENT = "patient"


def rendered_objects(project_dir: Path, overlay: str) -> list[Manifest]:
    """The objects of `build/manifests/<overlay>.yaml`, rendering it first when it is stale."""
    path = project_dir / RENDER_DIR / f"{overlay}.yaml"
    try:
        if is_stale(project_dir, path):
            render_all(project_dir, path.parent)
    except RenderError as error:
        raise PlatformError(str(error)) from None
    if not path.exists():
        raise PlatformError(f"there is no overlay {overlay!r} (k8s/overlays/{overlay})")
    return load_documents(path.read_text(encoding="utf-8"))


def for_cluster(
    objects: Iterable[Manifest],
    *,
    advertised_host: str,
    images: Mapping[str, str],
    patients: int = 0,
) -> list[Manifest]:
    """Copies of `objects` with the run's values set (see the module docstring)."""
    prepared = copy.deepcopy(list(objects))
    for kafka in of_kind(prepared, "Kafka"):
        listener = kafka_listener(kafka, EXTERNAL_LISTENER)
        for broker in dig(listener, "configuration", "brokers") or []:
            broker["advertisedHost"] = advertised_host
    for obj in prepared:
        # The pod shapes of built-in objects and ScaledJobs are views into `obj` itself.
        for pod in pod_shapes(obj):
            for container in pod.spec.get("containers", []):
                if container.get("image") in images:
                    container["image"] = images[container["image"]]
        if obj.get("kind") == "Deployment" and dig(obj, "metadata", "name") == PATIENT_DEPLOYMENT:
            obj["spec"]["replicas"] = patients
    return prepared


def external_bootstrap(objects: Iterable[Manifest], host: str) -> str:
    """`host:<bootstrap nodePort>` of the Kafka's external listener."""
    kafkas = of_kind(objects, "Kafka")
    ports = node_ports(kafka_listener(kafkas[0], EXTERNAL_LISTENER)) if kafkas else []
    if not ports:
        raise PlatformError(f"the Kafka has no {EXTERNAL_LISTENER!r} listener with a nodePort")
    return f"{host}:{ports[0]}"
