"""The KEDA manifest the harness installs on the cluster here (`--medpubsub-keda-manifest`):
KEDA's release manifest, which is `config/default` of its Go module rendered with kustomize.

Only the images change: each of the three Deployments (`keda-operator`, `keda-metrics-apiserver`,
`keda-admission`) runs the image built here from the same module, never pulled (no registry is
reachable). Everything else is as KEDA releases it: the operator makes its own certificates and
patches the APIService and the webhook configuration, the metrics API server serves
`external.metrics.k8s.io`, and the admission webhooks validate every ScaledJob and
TriggerAuthentication the harness applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.here import versions
from pytest_medpubsub.here.commands import HereError, run

MODULE = "github.com/kedacore/keda/v2"
CONFIG = "config/default"
# Container name -> the image built here. The container names are the Deployments' own.
IMAGES = {
    "keda-operator": versions.KEDA_IMAGE,
    "keda-metrics-apiserver": versions.KEDA_METRICS_IMAGE,
    "keda-admission-webhooks": versions.KEDA_WEBHOOKS_IMAGE,
}
# What the release manifest must contain: a change upstream fails here, not on a cluster.
DEPLOYMENTS = ("keda-operator", "keda-metrics-apiserver", "keda-admission")


def localize(documents: list[dict[str, Any]], images: dict[str, str]) -> list[dict[str, Any]]:
    """`config/default`'s documents with every KEDA container on its local image."""
    kept = [document for document in documents if document]
    found = {
        document["metadata"]["name"] for document in kept if document.get("kind") == "Deployment"
    }
    missing = [name for name in DEPLOYMENTS if name not in found]
    if missing:
        raise HereError(f"KEDA's {CONFIG} has no Deployment {', '.join(missing)} any more")
    placed = set()
    for document in kept:
        if document.get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            image = images.get(container.get("name", ""))
            if image is not None:
                container["image"] = image
                container["imagePullPolicy"] = "Never"
                placed.add(container["name"])
    unplaced = sorted(set(images) - placed)
    if unplaced:
        raise HereError(f"KEDA's {CONFIG} has no container {', '.join(unplaced)} any more")
    return kept


def module_dir(version: str) -> Path:
    """KEDA's module in the Go module cache, downloaded from the module proxy when missing."""
    listed = run(["go", "mod", "download", "-json", f"{MODULE}@v{version}"], 300).stdout
    try:
        path = Path(json.loads(listed)["Dir"])
    except (ValueError, KeyError, TypeError):
        raise HereError(f"`go mod download {MODULE}@v{version}` named no directory") from None
    if not (path / CONFIG).is_dir():
        raise HereError(f"KEDA {version}'s module at {path} has no {CONFIG}")
    return path


def render(version: str, images: dict[str, str] | None = None) -> str:
    rendered = run(["kubectl", "kustomize", str(module_dir(version) / CONFIG)], 120).stdout
    documents = list(yaml.safe_load_all(rendered))
    header = (
        f"# KEDA {version}: {CONFIG} of its Go module (the release manifest), rendered by"
        " pytest_medpubsub.here with the three images built here.\n"
    )
    return header + yaml.safe_dump_all(localize(documents, images or IMAGES), sort_keys=False)


def ensure_manifest(path: Path, version: str = versions.KEDA) -> Path:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(render(version))
        partial.rename(path)
    return path
