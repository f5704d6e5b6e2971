"""The render a cluster gets, and the values only the run knows.

`build/manifests/<overlay>.yaml` (rendered again when missing or older than k8s/ and keda/) is
what is applied. Four things are known only at run time and set here, on copies of the objects:
the host the Kafka external listener advertises (minikube's IP, an existing cluster's node), the
address of a Kafka outside the cluster (in the EndpointSlice of its bootstrap Service), the image
names (a registry prefix for an existing cluster), and the number of patients the platform starts
with (none: scenarios scale them).
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_medpubsub.designs import dispatcher as dispatcher_design
from pytest_medpubsub.k8s.designs import render_designs
from pytest_medpubsub.k8s.dispatcher import dispatched_job_templates
from pytest_medpubsub.k8s.external_kafka import BOOTSTRAP_SERVICE, SERVICE_NAME_LABEL
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
from pytest_medpubsub.k8s.render import OVERLAYS_DIR, RenderError, is_stale, render_all
from pytest_medpubsub.platforms.base import PlatformError

RENDER_DIR = Path("build/manifests")
PATIENT_DEPLOYMENT = "patient"


def rendered_objects(project_dir: Path, overlay: str) -> list[Manifest]:
    """The objects of `build/manifests/<overlay>.yaml`, rendering it first when it is stale
    (`dispatcher-<name>` is the dispatcher design's k8s/dispatcher-overlays/<name>)."""
    prefix = dispatcher_design.OVERLAY_PREFIX
    path = project_dir / RENDER_DIR / f"{overlay}.yaml"
    try:
        if is_stale(project_dir, path):
            if overlay.startswith(prefix):
                render_designs(project_dir, path.parent)
            else:
                render_all(project_dir, path.parent)
    except RenderError as error:
        raise PlatformError(str(error)) from None
    if not path.exists():
        source = (
            f"{dispatcher_design.OVERLAYS_DIR}/{overlay.removeprefix(prefix)}"
            if overlay.startswith(prefix)
            else f"{OVERLAYS_DIR}/{overlay}"
        )
        raise PlatformError(f"there is no overlay {overlay!r} ({source})")
    return load_documents(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where a Kafka outside the cluster is: an IP (an EndpointSlice holds no names) and port."""

    address: str
    port: int

    @property
    def address_type(self) -> str:
        return f"IPv{ipaddress.ip_address(self.address).version}"


def for_cluster(
    objects: Iterable[Manifest],
    *,
    advertised_host: str | None,
    images: Mapping[str, str],
    patients: int = 0,
    external_kafka: KafkaEndpoint | None = None,
) -> list[Manifest]:
    """Copies of `objects` with the run's values set (see the module docstring)."""
    prepared = copy.deepcopy(list(objects))
    for kafka in of_kind(prepared, "Kafka") if advertised_host else []:
        listener = kafka_listener(kafka, EXTERNAL_LISTENER)
        for broker in dig(listener, "configuration", "brokers") or []:
            broker["advertisedHost"] = advertised_host
    if external_kafka is not None:
        _point_at(prepared, external_kafka)
    for obj in prepared:
        _retag(obj, images)
        if obj.get("kind") == "Deployment" and dig(obj, "metadata", "name") == PATIENT_DEPLOYMENT:
            obj["spec"]["replicas"] = patients
    for config_map, key, job in dispatched_job_templates(prepared):
        _retag(job, images)
        config_map["data"][key] = yaml.safe_dump(job, sort_keys=False)
    return prepared


def _retag(obj: Manifest, images: Mapping[str, str]) -> None:
    # The pod shapes of built-in objects and ScaledJobs are views into `obj` itself.
    for pod in pod_shapes(obj):
        for container in pod.spec.get("containers", []):
            if container.get("image") in images:
                container["image"] = images[container["image"]]


def _point_at(objects: list[Manifest], endpoint: KafkaEndpoint) -> None:
    """Put the broker's address into the EndpointSlice(s) of the bootstrap Service; its port goes
    to the slice's port, which kube-proxy forwards the Service's 9092 to."""
    slices = [
        s
        for s in of_kind(objects, "EndpointSlice")
        if dig(s, "metadata", "labels", SERVICE_NAME_LABEL) == BOOTSTRAP_SERVICE
    ]
    if not slices:
        raise PlatformError(
            f"the render has no EndpointSlice of Service {BOOTSTRAP_SERVICE} to point at the "
            "external Kafka (k8s/components/external-kafka)"
        )
    for endpoint_slice in slices:
        endpoint_slice["addressType"] = endpoint.address_type
        for port in endpoint_slice.get("ports") or []:
            port["port"] = endpoint.port
        for entry in endpoint_slice.get("endpoints") or []:
            entry["addresses"] = [endpoint.address]


def external_bootstrap(objects: Iterable[Manifest], host: str) -> str:
    """`host:<bootstrap nodePort>` of the Kafka's external listener."""
    kafkas = of_kind(objects, "Kafka")
    ports = node_ports(kafka_listener(kafkas[0], EXTERNAL_LISTENER)) if kafkas else []
    if not ports:
        raise PlatformError(f"the Kafka has no {EXTERNAL_LISTENER!r} listener with a nodePort")
    return f"{host}:{ports[0]}"
