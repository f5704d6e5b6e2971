"""Rendered Kubernetes objects as plain dicts, and the few lookups every check needs.

The checks work on what `kubectl kustomize` prints, not on the source files, because that is
what a cluster receives: a patch in an overlay can break what the base got right.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

Manifest = dict[str, Any]

PART_OF = "medpubsub"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"


def load_documents(text: str) -> list[Manifest]:
    """Every non-empty YAML document of `text` (a multi-document render)."""
    documents = [document for document in yaml.safe_load_all(text) if document is not None]
    for document in documents:
        if not isinstance(document, dict):
            raise ValueError(f"a YAML document is not an object: {str(document)[:60]!r}")
    return documents


def dump_documents(objects: Iterable[Manifest]) -> str:
    """The inverse of `load_documents` (what `kubectl apply -f -` reads)."""
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def object_id(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name` (or `Kind/name` for cluster-scoped objects): how findings name it."""
    metadata = mapping(obj.get("metadata"))
    namespace = metadata.get("namespace")
    name = metadata.get("name", "<unnamed>")
    kind = obj.get("kind", "<no kind>")
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def api_group(obj: Mapping[str, Any]) -> str:
    """The API group of `apiVersion` ("" for the core group)."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.rpartition("/")[0]


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj.get("kind") == kind]


def labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(mapping(obj.get("metadata")).get("labels"))


def name(obj: Mapping[str, Any]) -> str:
    return str(mapping(obj.get("metadata")).get("name", ""))


def namespace(obj: Mapping[str, Any]) -> str:
    return str(mapping(obj.get("metadata")).get("namespace", ""))


def mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one: broken input must yield findings, not
    exceptions, so lookups never assume a field is there."""
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def dig(obj: Mapping[str, Any], *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None as soon as a step is missing."""
    node: Any = obj
    for step in path:
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


@dataclass(frozen=True)
class PodShape:
    """A pod the object makes, in one shape whatever the object's own layout.

    Built-in workloads carry a pod template; Strimzi spreads the same settings over `template`
    fields and `resources` elsewhere, and picks the images itself (pinned by the operator's
    release). Normalising both lets one security policy apply to every pod of the system.
    """

    owner: str
    path: str
    labels: Mapping[str, Any]
    spec: Mapping[str, Any]
    images_from_operator: bool = False

    def containers(self) -> Iterator[Mapping[str, Any]]:
        for key in ("initContainers", "containers"):
            for container in sequence(self.spec.get(key)):
                yield mapping(container)


_TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ScaledJob": ("spec", "jobTargetRef", "template"),
}


def pod_shapes(obj: Mapping[str, Any]) -> list[PodShape]:
    """The pods `obj` makes (none for objects that make no pods)."""
    owner = object_id(obj)
    kind = obj.get("kind")
    if kind == "Pod":
        return [PodShape(owner, "", labels(obj), mapping(obj.get("spec")))]
    if kind == "CronJob":
        template = mapping(dig(obj, "spec", "jobTemplate", "spec", "template"))
        return [_from_template(owner, "spec.jobTemplate.spec.template", template)]
    if isinstance(kind, str) and kind in _TEMPLATE_PATHS:
        path = _TEMPLATE_PATHS[kind]
        return [_from_template(owner, ".".join(path), mapping(dig(obj, *path)))]
    if kind == "KafkaNodePool":
        return [_strimzi_node_pool(owner, obj)]
    if kind == "Kafka":
        return _strimzi_entity_operator(owner, obj)
    return []


def _from_template(owner: str, path: str, template: Mapping[str, Any]) -> PodShape:
    labels_ = mapping(mapping(template.get("metadata")).get("labels"))
    return PodShape(owner, path, labels_, mapping(template.get("spec")))


def _strimzi_node_pool(owner: str, pool: Mapping[str, Any]) -> PodShape:
    spec = mapping(pool.get("spec"))
    template = mapping(spec.get("template"))
    pod = mapping(template.get("pod"))
    container = {
        "name": "kafka",
        "securityContext": dig(template, "kafkaContainer", "securityContext"),
        "resources": spec.get("resources"),
    }
    return PodShape(
        owner,
        "spec.template",
        mapping(mapping(pod.get("metadata")).get("labels")),
        {"securityContext": pod.get("securityContext"), "containers": [container]},
        images_from_operator=True,
    )


def _strimzi_entity_operator(owner: str, kafka: Mapping[str, Any]) -> list[PodShape]:
    operator = mapping(dig(kafka, "spec", "entityOperator"))
    if not operator:
        return []
    template = mapping(operator.get("template"))
    pod = mapping(template.get("pod"))
    containers = [
        {
            "name": key,
            "securityContext": dig(template, f"{key}Container", "securityContext"),
            "resources": mapping(operator.get(key)).get("resources"),
        }
        for key in ("topicOperator", "userOperator")
        if key in operator
    ]
    return [
        PodShape(
            owner,
            "spec.entityOperator.template",
            mapping(mapping(pod.get("metadata")).get("labels")),
            {"securityContext": pod.get("securityContext"), "containers": containers},
            images_from_operator=True,
        )
    ]


EXTERNAL_LISTENER = "external"


def kafka_listener(kafka: Mapping[str, Any], listener_name: str) -> Mapping[str, Any]:
    """The Kafka's listener called `listener_name` (empty when there is none)."""
    for listener in map(mapping, sequence(dig(kafka, "spec", "kafka", "listeners"))):
        if listener.get("name") == listener_name:
            return listener
    return {}


def node_ports(listener: Mapping[str, Any]) -> list[int]:
    """The fixed NodePorts of a listener: its bootstrap's, then each broker's."""
    configuration = mapping(listener.get("configuration"))
    ports = [dig(configuration, "bootstrap", "nodePort")]
    ports += [mapping(broker).get("nodePort") for broker in sequence(configuration.get("brokers"))]
    return [port for port in ports if isinstance(port, int)]
