"""Strimzi and KEDA: their pinned release manifests, installing them, waiting for them.

The manifests are the projects' own release assets, downloaded once into the user cache (or read
from a file or URL the user gives, for machines without GitHub access) and applied server-side,
as both projects document for their large CRDs. The Strimzi cluster operator goes into the
medpubsub namespace and watches only it, which its release manifest does when its RoleBindings
name that namespace instead of the placeholder `myproject`.

Readiness, and whether the operator is installed already, are judged by the Deployments of the
manifest actually applied (`as_given`), a downloaded release as much as a given file: a manifest
the user gives need not be the release (KEDA's `config/minimal` has only `keda-operator`). Such
a manifest may run a locally built image that is never pulled (`imagePullPolicy: Never`);
`require_local_images` checks that a node's containerd has it before anything is applied.

On a cluster the harness did not create, it touches nothing it did not install: the CRDs it
applies carry `MANAGED_LABEL`; CRDs of the operator that exist without that label belong to
another installation, so the run stops with one sentence instead of applying over them; and
`uninstall` never deletes a CRD (deleting one deletes every resource of its kind, in every
namespace).
"""

from __future__ import annotations

import dataclasses
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from pytest_medpubsub import progress
from pytest_medpubsub.k8s import objects
from pytest_medpubsub.kafka.jars import cache_dir
from pytest_medpubsub.platforms import containerd
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.kubectl import NAMESPACE, Kubectl
from pytest_medpubsub.platforms.status import deployment_state
from pytest_medpubsub.platforms.waits import wait_step

DOWNLOAD_TIMEOUT_S = 120.0
MANAGED_LABEL = ("app.kubernetes.io/managed-by", "medpubsub")
READY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Operator:
    """An operator release: where its manifest is and which Deployments make it ready."""

    name: str
    version: str
    url: str
    namespace: str
    deployments: tuple[str, ...]
    namespace_placeholder: str | None = None

    @property
    def cache_file(self) -> Path:
        return cache_dir() / "operators" / f"{self.name.lower()}-{self.version}.yaml"


STRIMZI = Operator(
    name="Strimzi",
    version="1.2.0",
    url=(
        "https://github.com/strimzi/strimzi-kafka-operator/releases/download/1.2.0/"
        "strimzi-cluster-operator-1.2.0.yaml"
    ),
    namespace=NAMESPACE,
    deployments=("strimzi-cluster-operator",),
    namespace_placeholder="myproject",
)
KEDA = Operator(
    name="KEDA",
    version="2.20.2",
    url="https://github.com/kedacore/keda/releases/download/v2.20.2/keda-2.20.2.yaml",
    namespace="keda",
    # The release manifest is `kustomize build config/default` of KEDA's module, whose Deployments
    # are these (the Helm chart names its own differently; tests/test_here_keda.py renders the
    # module and holds this tuple to it).
    deployments=("keda-operator", "keda-metrics-apiserver", "keda-admission"),
)


def release_manifest(operator: Operator, given: str | None) -> str:
    """The operator's manifest text, ready to apply: from `given` (a file or URL), else the cache,
    else downloaded into the cache."""
    if given and "://" not in given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise PlatformError(f"the {operator.name} manifest {given} is not a file")
        text = path.read_text(encoding="utf-8")
    else:
        url = given or operator.url
        target = operator.cache_file if given is None else _cached_copy_of(url)
        if not target.exists():
            _download(operator, url, target)
        text = target.read_text(encoding="utf-8")
    if "kind: Deployment" not in text:
        raise PlatformError(f"the {operator.name} manifest has no Deployment; is it the release?")
    if operator.namespace_placeholder:
        text = text.replace(
            f"namespace: {operator.namespace_placeholder}", f"namespace: {operator.namespace}"
        )
    return text


def as_given(operator: Operator, manifest: str) -> Operator:
    """`operator` with the namespace and Deployments the (given) `manifest` really contains."""
    deployments = _deployments(manifest)
    if not deployments:
        raise PlatformError(f"the {operator.name} manifest has no Deployment; is it the release?")
    namespaces = {objects.namespace(d) or operator.namespace for d in deployments}
    if len(namespaces) != 1:
        raise PlatformError(
            f"the {operator.name} manifest has Deployments in several namespaces "
            f"({', '.join(sorted(namespaces))}); the harness expects one"
        )
    return dataclasses.replace(
        operator,
        namespace=namespaces.pop(),
        deployments=tuple(objects.name(d) for d in deployments),
    )


def local_images(manifest: str) -> list[str]:
    """The images the manifest's Deployments run with `imagePullPolicy: Never` (built locally)."""
    return sorted(
        {
            str(container["image"])
            for deployment in _deployments(manifest)
            for pod in objects.pod_shapes(deployment)
            for container in pod.containers()
            if container.get("imagePullPolicy") == "Never" and container.get("image")
        }
    )


def require_local_images(operator: Operator, manifest: str, source: str, socket: str) -> None:
    """Every never-pulled image of the manifest is in the node's containerd at `socket`."""
    held = containerd.images(socket)
    for image in local_images(manifest):
        if containerd.normalized(image) not in held:
            raise PlatformUnavailable(
                f"the {operator.name} manifest {source} runs {image} with imagePullPolicy Never, "
                f"but the containerd at {socket} has no such image, so its pods could never "
                "start; import it there first."
            )


def _deployments(manifest: str) -> list[objects.Manifest]:
    return [
        document
        for document in _documents(manifest)
        if document.get("kind") == "Deployment" and objects.name(document)
    ]


def _cached_copy_of(url: str) -> Path:
    return cache_dir() / "operators" / url.rstrip("/").rsplit("/", 1)[-1]


def _download(operator: Operator, url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    with progress.step(f"downloading the {operator.name} {operator.version} release manifest"):
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                partial.write_bytes(response.read())
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise PlatformError(
                f"cannot download the {operator.name} manifest from {url} ({error}); download it "
                "yourself and pass the file (see docs/kubernetes.md)"
            ) from None
        partial.replace(target)  # atomic: an interrupted download never looks complete


def is_installed(kubectl: Kubectl, operator: Operator) -> bool:
    """All of the operator's Deployments exist already (a reused or shared cluster)."""
    return all(
        kubectl.exists("deployment", name, namespace=operator.namespace)
        for name in operator.deployments
    )


def install(kubectl: Kubectl, operator: Operator, manifest: str) -> None:
    """Apply the operator's manifest, its CRDs labelled as ours; refuse (one sentence) when the
    cluster has its CRDs from another installation."""
    documents = _documents(manifest)
    foreign = foreign_crds(documents, partial(_crd_labels, kubectl))
    if foreign:
        raise PlatformUnavailable(
            f"{operator.name}'s CRDs ({', '.join(foreign)}) are on this cluster already, from an "
            f"installation the harness did not make, and no {operator.name} runs in "
            f"{operator.namespace}: the harness will not apply over them. Use the cluster's own "
            "operator in that namespace, pass --medpubsub-kafka=HOST:PORT (no Strimzi), or use "
            "another cluster."
        )
    claimed = _dump(claim_crds(documents))
    with progress.step(f"installing {operator.name} {operator.version}"):
        kubectl.apply(
            claimed, namespace=_apply_namespace(operator, manifest), server_side=True,
            timeout_s=300,
        )  # fmt: skip


def uninstall(kubectl: Kubectl, operator: Operator, manifest: str) -> None:
    """Delete what `install` applied, but its CRDs: they stay (labelled as ours), since deleting
    a CRD deletes every resource of that kind in the cluster."""
    kept = without_crds(_documents(manifest))
    with progress.step(f"removing {operator.name} {operator.version} (its CRDs stay)"):
        kubectl.run(
            "delete",
            "--filename",
            "-",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=180s",
            namespace=_apply_namespace(operator, manifest),
            stdin=_dump(kept),
            timeout_s=240,
        )


def claim_crds(documents: list[objects.Manifest]) -> list[objects.Manifest]:
    """The documents with `MANAGED_LABEL` on every CRD (the others as they are)."""
    key, value = MANAGED_LABEL
    for document in documents:
        if document.get("kind") == "CustomResourceDefinition":
            metadata = document.setdefault("metadata", {})
            metadata["labels"] = {**(metadata.get("labels") or {}), key: value}
    return documents


def foreign_crds(
    documents: list[objects.Manifest], labels_of: Callable[[str], dict[str, str] | None]
) -> list[str]:
    """The manifest's CRDs that exist (`labels_of` gives their labels, None when absent) without
    `MANAGED_LABEL`: another installation's."""
    key, value = MANAGED_LABEL
    names = [objects.name(d) for d in documents if d.get("kind") == "CustomResourceDefinition"]
    found = {name: labels_of(name) for name in names}
    return sorted(
        name for name, labels in found.items() if labels is not None and labels.get(key) != value
    )


def without_crds(documents: list[objects.Manifest]) -> list[objects.Manifest]:
    return [d for d in documents if d.get("kind") != "CustomResourceDefinition"]


def _crd_labels(kubectl: Kubectl, name: str) -> dict[str, str] | None:
    if not kubectl.exists("customresourcedefinition", name, namespace=""):
        return None
    crd = kubectl.get("customresourcedefinition", name, namespace="")
    return dict(crd.get("metadata", {}).get("labels") or {})


def _documents(manifest: str) -> list[objects.Manifest]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a release is ~1 MB of CRDs
    try:
        return [d for d in yaml.load_all(manifest, Loader=loader) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise PlatformError(f"a manifest is not valid YAML: {error}") from None


def _dump(documents: list[objects.Manifest]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False)


def _apply_namespace(operator: Operator, manifest: str) -> str:
    """The operator's namespace for kubectl's --namespace, or "" (none) when the manifest names
    another namespace itself: kubectl refuses --namespace for an object of another namespace, and
    KEDA's manifests (the release and config/minimal) have a RoleBinding in kube-system and name
    every namespace they use. Strimzi's leaves its Deployment's namespace to --namespace."""
    named = {objects.namespace(document) for document in _documents(manifest)}
    return "" if named - {None, "", operator.namespace} else operator.namespace


def wait_ready(kubectl: Kubectl, operator: Operator, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until every Deployment of the operator has all its replicas available."""
    for name in operator.deployments:
        wait_step(
            f"{operator.name}'s Deployment {operator.namespace}/{name} to be available",
            partial(_deployment_state, kubectl, operator.namespace, name),
            lambda state: state.startswith("available"),
            timeout_s,
        )


def _deployment_state(kubectl: Kubectl, namespace: str, name: str) -> str:
    return deployment_state(kubectl.get("deployment", name, namespace=namespace))
