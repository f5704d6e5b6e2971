"""The KEDA manifest the harness installs (`--medpubsub-keda-manifest`), made from KEDA's own
module: `config/minimal`, rendered with kustomize, then trimmed for this cluster.

- No metrics API server: a ScaledJob needs only the operator, and an APIService with no backend
  would break API discovery for every client, so both its Deployment and the APIService go.
- The operator runs the image built here (`imagePullPolicy: Never`: no registry is reachable).
- Webhook and APIService patching are off (neither exists), but certificate rotation stays on:
  the operator always starts its gRPC metrics server and exits without certificates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.here import versions
from pytest_medpubsub.here.commands import HereError, run

MODULE = "github.com/kedacore/keda/v2"
DROPPED = (
    ("Deployment", "keda-metrics-apiserver"),
    ("APIService", "v1beta1.external.metrics.k8s.io"),
)
OPERATOR = "keda-operator"
OPERATOR_FLAGS = ("--enable-webhook-patching=false", "--enable-apiservice-patching=false")


def trim(documents: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    """config/minimal's documents, minus DROPPED, with the operator on `image`."""
    kept = []
    for document in documents:
        if not document:
            continue
        key = (document.get("kind"), document.get("metadata", {}).get("name"))
        if key in DROPPED:
            continue
        kept.append(
            _local_operator(document, image) if key == ("Deployment", OPERATOR) else document
        )
    found = {(d.get("kind"), d.get("metadata", {}).get("name")) for d in kept}
    if ("Deployment", OPERATOR) not in found:
        raise HereError(f"KEDA's config/minimal has no Deployment {OPERATOR} any more")
    return kept


def _local_operator(deployment: dict[str, Any], image: str) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    for container in containers:
        if container.get("name") != OPERATOR:
            continue
        container["image"] = image
        container["imagePullPolicy"] = "Never"
        args = [a for a in container.get("args", []) if not a.startswith(_flag_names())]
        container["args"] = [*args, *OPERATOR_FLAGS]
    return deployment


def _flag_names() -> tuple[str, ...]:
    return tuple(flag.split("=")[0] for flag in OPERATOR_FLAGS)


def module_dir(version: str) -> Path:
    """KEDA's module in the Go module cache (there once the KEDA operator was resolved)."""
    cache = run(["go", "env", "GOMODCACHE"], 60).stdout.strip()
    path = Path(cache) / f"{MODULE}@v{version}"
    if not (path / "config" / "minimal").is_dir():
        raise HereError(f"KEDA {version}'s module is not in the Go module cache at {path}")
    return path


def render(version: str, image: str = versions.KEDA_IMAGE) -> str:
    config = module_dir(version) / "config" / "minimal"
    env = dict(os.environ)
    rendered = run(["kubectl", "kustomize", str(config)], 120, env=env).stdout
    documents = list(yaml.safe_load_all(rendered))
    header = (
        f"# KEDA {version}, config/minimal from its Go module, trimmed by pytest_medpubsub.here"
        " (no metrics API server, local operator image).\n"
    )
    return header + yaml.safe_dump_all(trim(documents, image), sort_keys=False)


def ensure_manifest(path: Path, version: str = versions.KEDA) -> Path:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(render(version))
        partial.rename(path)
    return path
