"""Offline rules for a render whose Kafka is outside the cluster (`k8s/components/external-kafka`).

Such a render has no Strimzi objects: `medpubsub-kafka-bootstrap` is a selectorless Service whose
EndpointSlice holds the broker's address, and the harness creates the topics of
`k8s/base/kafka-topics.yaml` on that broker. The rules, identifier `wiring.external-kafka`:

- no `kafka.strimzi.io` object is left (no operator would reconcile it, and without Strimzi's
  CRDs the apply itself fails);
- exactly one Service `<kafka>-kafka-bootstrap`, without a selector (else the endpoints
  controller would own its endpoints and drop ours), with one named TCP port;
- at least one EndpointSlice labelled `kubernetes.io/service-name` with that Service, not marked
  as the controller's, of address type IPv4 or IPv6, whose port has the Service port's name (that
  is how kube-proxy pairs them) and a number, and whose endpoints are addresses of that type.

Everything else is the usual wiring (`wiring.py`): the services and the ScaledJob trigger must dial
that Service's name and port and use the topics the harness creates. It is checked by handing
`wiring_findings` a stand-in for the Strimzi `Kafka` the Service replaces, with the Service's port
as its plain listener. Rules about Strimzi's own broker (its node pool, storage) do not apply to a
broker that is not ours; they are left out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import (
    Manifest,
    api_group,
    dig,
    labels,
    mapping,
    name,
    namespace,
    object_id,
    of_kind,
    sequence,
)
from pytest_medpubsub.k8s.wiring import wiring_findings

RULE = "wiring.external-kafka"
KAFKA_NAME = "medpubsub"
BOOTSTRAP_SERVICE = f"{KAFKA_NAME}-kafka-bootstrap"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_MANAGER = "endpointslice-controller.k8s.io"
STRIMZI_GROUP = "kafka.strimzi.io"
_NOT_OURS = ("wiring.kafka", "wiring.storage")


def is_external(objects: Iterable[Manifest]) -> bool:
    """True for a render whose Kafka is outside the cluster: no Strimzi `Kafka`, and the
    bootstrap Service is one of ours."""
    objects = list(objects)
    return not of_kind(objects, "Kafka") and any(
        name(service) == BOOTSTRAP_SERVICE for service in of_kind(objects, "Service")
    )


def external_kafka_findings(
    objects: Iterable[Manifest], topics: Iterable[Manifest]
) -> list[Finding]:
    """Every broken rule of an external-Kafka render; `topics` are the KafkaTopic documents the
    harness creates on the broker (those of `k8s/base/kafka-topics.yaml`)."""
    objects = list(objects)
    findings = [
        Finding(object_id(obj), RULE, "a Strimzi object without Strimzi: nothing reconciles it")
        for obj in objects
        if api_group(obj) == STRIMZI_GROUP
    ]
    services = [s for s in of_kind(objects, "Service") if name(s) == BOOTSTRAP_SERVICE]
    if len(services) != 1:
        return [
            *findings,
            Finding(
                f"Service/{KAFKA_NAME}/{BOOTSTRAP_SERVICE}",
                RULE,
                f"expected one Service {BOOTSTRAP_SERVICE}, found {len(services)}",
            ),
        ]
    service = services[0]
    port, service_findings = _service_port(service)
    findings += service_findings
    if port is not None:
        findings += _endpoint_slices(objects, service, port)
        stand_in = _stand_in_kafka(service, int(port.get("port", 0)))
        findings += [
            finding
            for finding in wiring_findings([*objects, stand_in, *topics])
            if not (finding.object == object_id(stand_in) and finding.rule in _NOT_OURS)
        ]
    return findings


def _service_port(service: Manifest) -> tuple[Mapping[str, Any] | None, list[Finding]]:
    owner = object_id(service)
    findings = []
    if dig(service, "spec", "selector"):
        findings.append(
            Finding(
                owner,
                RULE,
                "the Service has a selector: the endpoints controller would own its endpoints "
                "and replace the broker's address with its pods (there are none)",
            )
        )
    if dig(service, "spec", "type") not in (None, "ClusterIP"):
        findings.append(Finding(owner, RULE, "the Service must be of type ClusterIP"))
    ports = [mapping(port) for port in sequence(dig(service, "spec", "ports"))]
    if len(ports) != 1 or not ports[0].get("name") or ports[0].get("protocol", "TCP") != "TCP":
        findings.append(Finding(owner, RULE, "the Service needs exactly one named TCP port"))
        return None, findings
    return ports[0], findings


def _endpoint_slices(
    objects: list[Manifest], service: Manifest, port: Mapping[str, Any]
) -> list[Finding]:
    slices = [
        endpoint_slice
        for endpoint_slice in of_kind(objects, "EndpointSlice")
        if labels(endpoint_slice).get(SERVICE_NAME_LABEL) == name(service)
        and namespace(endpoint_slice) == namespace(service)
    ]
    if not slices:
        return [
            Finding(
                object_id(service),
                RULE,
                f"no EndpointSlice labelled {SERVICE_NAME_LABEL}: {name(service)} holds the "
                "broker's address",
            )
        ]
    findings = []
    for endpoint_slice in slices:
        owner = object_id(endpoint_slice)

        def broken(message: str, owner: str = owner) -> None:
            findings.append(Finding(owner, RULE, message))

        if labels(endpoint_slice).get(MANAGED_BY_LABEL, CONTROLLER_MANAGER) == CONTROLLER_MANAGER:
            broken(f"{MANAGED_BY_LABEL} must name us, or the EndpointSlice controller deletes it")
        address_type = endpoint_slice.get("addressType")
        if address_type not in ("IPv4", "IPv6"):
            broken(f"addressType {address_type!r}: kube-proxy serves only IPv4 and IPv6 slices")
        slice_ports = [mapping(p) for p in sequence(endpoint_slice.get("ports"))]
        if not any(
            p.get("name") == port.get("name") and isinstance(p.get("port"), int)
            for p in slice_ports
        ):
            broken(
                f"no port named {port.get('name')!r} with a number: kube-proxy pairs the "
                "Service's port with the slice's port of the same name"
            )
        addresses = [
            str(address)
            for endpoint in sequence(endpoint_slice.get("endpoints"))
            for address in sequence(mapping(endpoint).get("addresses"))
        ]
        if not addresses:
            broken("no endpoint address: the Service would lead nowhere")
        for address in addresses:
            if not _is_address(address, address_type):
                broken(f"{address!r} is not an {address_type} address")
    return findings


def _is_address(address: str, address_type: object) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return f"IPv{parsed.version}" == address_type


def _stand_in_kafka(service: Manifest, port: int) -> Manifest:
    """The Strimzi `Kafka` whose bootstrap Service this is: its plain internal listener on the
    Service's port (`<name>-kafka-bootstrap` is how Strimzi names that Service)."""
    return {
        "apiVersion": f"{STRIMZI_GROUP}/v1",
        "kind": "Kafka",
        "metadata": {
            "name": name(service).removesuffix("-kafka-bootstrap"),
            "namespace": namespace(service),
        },
        "spec": {"kafka": {"listeners": [{"name": "plain", "port": port, "type": "internal",
                                          "tls": False}]}},
    }  # fmt: skip
