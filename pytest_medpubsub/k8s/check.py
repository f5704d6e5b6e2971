"""All offline checks of the Kubernetes side, as one function and a command.

`check_project` renders every overlay and returns the findings of every rule: schemas (built-in
kinds and, when the pinned CRDs can be fetched, Strimzi / KEDA kinds), the security policy, the
wiring between Strimzi (or the bootstrap Service of a Kafka outside the cluster), KEDA and the
services, the host's way into Kafka, and the images of the Dockerfile. An empty list is the proof
`make test` gives without a cluster.

    python -m pytest_medpubsub.k8s.check      # prints the findings, exit status 1 if any
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.k8s.crds import CrdsUnavailable, crds_dir
from pytest_medpubsub.k8s.dockerfiles import SERVICES, dockerfile_findings
from pytest_medpubsub.k8s.external_kafka import external_kafka_findings, is_external
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.kafka_users import kafka_user_findings
from pytest_medpubsub.k8s.objects import Manifest, load_documents, of_kind
from pytest_medpubsub.k8s.policy import security_findings
from pytest_medpubsub.k8s.render import OVERLAYS_DIR, RenderError, overlays, render
from pytest_medpubsub.k8s.schemas import CrdSchemas, schema_findings
from pytest_medpubsub.k8s.wiring import external_listener_findings, wiring_findings

KIND_CONFIG = "kind-config.yaml"
TOPICS_MANIFEST = Path("k8s/base/kafka-topics.yaml")
"""The topics the harness creates on a Kafka outside the cluster (the same the cluster gets)."""


def crd_schemas() -> CrdSchemas:
    """Validators of the pinned Strimzi and KEDA CRDs (fetched into the user cache the first
    time; `CrdsUnavailable` says which prerequisite is missing when they cannot be)."""
    return CrdSchemas.load(crds_dir())


def crd_schemas_or_note() -> CrdSchemas | None:
    """The CRD validators for a command, or None after printing why custom kinds go unchecked."""
    try:
        return crd_schemas()
    except CrdsUnavailable as error:
        print(f"note: Strimzi / KEDA objects are not schema-checked: {error}")
        return None


def check_objects(
    objects: Iterable[Manifest],
    crds: CrdSchemas | None,
    external_topics: Iterable[Manifest] = (),
) -> list[Finding]:
    """Schema, security and wiring findings of one render (custom kinds unchecked without CRDs).

    A render whose Kafka is outside the cluster is wired against `external_topics`, the
    KafkaTopic documents the harness creates on that broker.
    """
    objects = list(objects)
    wiring = (
        external_kafka_findings(objects, external_topics)
        if is_external(objects)
        else wiring_findings(objects)
    )
    return [
        *schema_findings(objects, crds),
        *security_findings(objects),
        *kafka_user_findings(objects),
        *wiring,
    ]


def harness_topics(project_dir: Path) -> list[Manifest]:
    """The KafkaTopic documents of the base: what the harness creates on an external broker."""
    text = (project_dir / TOPICS_MANIFEST).read_text(encoding="utf-8")
    return of_kind(load_documents(text), "KafkaTopic")


def check_overlay(project_dir: Path, overlay: str, crds: CrdSchemas | None) -> list[Finding]:
    """Render `overlay` and check it, the kind port mappings included when it has a kind config."""
    overlay_dir = project_dir / OVERLAYS_DIR / overlay
    objects = load_documents(render(overlay_dir))
    kind_config_path = overlay_dir / KIND_CONFIG
    kind_config: dict[str, Any] | None = None
    if kind_config_path.exists():
        kind_config = yaml.safe_load(kind_config_path.read_text(encoding="utf-8"))
    findings = [
        *check_objects(objects, crds, harness_topics(project_dir)),
        *external_listener_findings(objects, kind_config),
    ]
    return [dataclasses.replace(finding, where=f"overlays/{overlay}") for finding in findings]


def check_project(project_dir: Path, crds: CrdSchemas | None = None) -> list[Finding]:
    """Every finding of every overlay and Dockerfile of the checkout at `project_dir`."""
    findings: list[Finding] = []
    for overlay in overlays(project_dir):
        findings += check_overlay(project_dir, overlay, crds)
    for service in SERVICES:
        findings += dockerfile_findings(project_dir, service)
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.k8s.check",
        description="Check the rendered manifests and the Dockerfile without a cluster.",
    )
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the checkout")
    arguments = parser.parse_args(argv)
    crds = crd_schemas_or_note()
    try:
        findings = check_project(arguments.project, crds)
    except RenderError as error:
        print(f"check: {error}", file=sys.stderr)
        return 1
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s)" if findings else "all offline checks passed")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
