"""The security and labelling policy every pod of the system meets (Pod Security `restricted`
and then some), checked on the rendered objects.

Rules, each with the identifier a finding carries:

- `security.runAsNonRoot`, `security.seccompProfile` (RuntimeDefault), at pod or container level;
- `security.allowPrivilegeEscalation` (false), `security.readOnlyRootFilesystem` (true),
  `security.capabilities` (drop ALL, add nothing), `security.privileged` (not true),
  `security.hostNamespaces` (no host network, PID or IPC), per container;
- `resources.requests`, `resources.limits`: cpu and memory, per container;
- `image.pinned`: a tag that is not `latest` (or a digest); Strimzi picks its own images;
- `labels.object`, `labels.pod`: `app.kubernetes.io/name` and `app.kubernetes.io/part-of:
  medpubsub` on every object and pod template (Strimzi sets `name` on its pods itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import (
    NAME_LABEL,
    PART_OF,
    PART_OF_LABEL,
    Manifest,
    PodShape,
    labels,
    mapping,
    object_id,
    pod_shapes,
    sequence,
)

RESOURCE_NAMES = ("cpu", "memory")


def security_findings(objects: Iterable[Manifest]) -> list[Finding]:
    """Every broken security, resource, image or label rule of `objects`."""
    findings: list[Finding] = []
    for obj in objects:
        findings += _object_labels(obj)
        for pod in pod_shapes(obj):
            findings += pod_findings(pod)
    return findings


def pod_findings(pod: PodShape) -> list[Finding]:
    """The rules of one pod and its containers."""
    findings: list[Finding] = []

    def broken(rule: str, message: str) -> None:
        findings.append(Finding(pod.owner, rule, message))

    pod_context = mapping(pod.spec.get("securityContext"))
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(field) is True:
            broken("security.hostNamespaces", f"{pod.path}: {field} must not be true")
    if PART_OF_LABEL not in pod.labels or pod.labels.get(PART_OF_LABEL) != PART_OF:
        broken("labels.pod", f"{pod.path}: pod labels need {PART_OF_LABEL}: {PART_OF}")
    if not pod.images_from_operator and NAME_LABEL not in pod.labels:
        broken("labels.pod", f"{pod.path}: pod labels need {NAME_LABEL}")
    containers = list(pod.containers())
    if not containers:
        broken("security.containers", f"{pod.path}: no containers to check")
    for container in containers:
        where = f"{pod.path} container {container.get('name', '<unnamed>')}"
        context = mapping(container.get("securityContext"))
        if _effective(context, pod_context, "runAsNonRoot") is not True:
            broken("security.runAsNonRoot", f"{where}: runAsNonRoot must be true")
        if _effective(context, pod_context, "runAsUser") == 0:
            broken("security.runAsNonRoot", f"{where}: runAsUser must not be 0")
        seccomp = mapping(_effective(context, pod_context, "seccompProfile"))
        if seccomp.get("type") != "RuntimeDefault":
            broken(
                "security.seccompProfile", f"{where}: seccompProfile.type must be RuntimeDefault"
            )
        if context.get("allowPrivilegeEscalation") is not False:
            broken(
                "security.allowPrivilegeEscalation",
                f"{where}: allowPrivilegeEscalation must be false",
            )
        if context.get("readOnlyRootFilesystem") is not True:
            broken(
                "security.readOnlyRootFilesystem", f"{where}: readOnlyRootFilesystem must be true"
            )
        if context.get("privileged") is True:
            broken("security.privileged", f"{where}: privileged must not be true")
        capabilities = mapping(context.get("capabilities"))
        if "ALL" not in sequence(capabilities.get("drop")):
            broken("security.capabilities", f"{where}: capabilities.drop must contain ALL")
        if sequence(capabilities.get("add")):
            broken("security.capabilities", f"{where}: capabilities.add must be empty")
        findings += _resources(pod.owner, where, mapping(container.get("resources")))
        if not pod.images_from_operator or "image" in container:
            findings += _image(pod.owner, where, container.get("image"))
    return findings


def _effective(container: Mapping[str, Any], pod: Mapping[str, Any], field: str) -> Any:
    """A container's setting wins over the pod's, as the kubelet applies them."""
    return container[field] if field in container else pod.get(field)


def _resources(owner: str, where: str, resources: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for kind in ("requests", "limits"):
        given = mapping(resources.get(kind))
        missing = [name for name in RESOURCE_NAMES if name not in given]
        if missing:
            findings.append(
                Finding(owner, f"resources.{kind}", f"{where}: {kind} need {' and '.join(missing)}")
            )
    return findings


def _image(owner: str, where: str, image: object) -> list[Finding]:
    if not isinstance(image, str) or not image:
        return [Finding(owner, "image.pinned", f"{where}: no image")]
    if "@sha256:" in image:
        return []
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag or tag in ("", "latest"):
        return [Finding(owner, "image.pinned", f"{where}: {image} needs a version tag, not latest")]
    return []


def _object_labels(obj: Manifest) -> list[Finding]:
    given = labels(obj)
    missing = [label for label in (NAME_LABEL, PART_OF_LABEL) if label not in given]
    if missing:
        return [
            Finding(object_id(obj), "labels.object", f"metadata.labels need {', '.join(missing)}")
        ]
    if given[PART_OF_LABEL] != PART_OF:
        return [
            Finding(
                object_id(obj),
                "labels.object",
                f"{PART_OF_LABEL} is {given[PART_OF_LABEL]!r}, expected {PART_OF!r}",
            )
        ]
    return []
