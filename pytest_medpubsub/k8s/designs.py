"""The overlays of the dispatcher design (k8s/dispatcher-overlays), rendered and checked offline.

They are kept apart from k8s/overlays, whose every render has the medicine ScaledJob: here the
dispatcher (k8s/components/dispatcher) replaces it. A render is held to every check of
`check.check_objects` (schemas, policy, wiring of Kafka, topics and services) except the one
that wants a ScaledJob, and to the dispatcher's own rules (dispatcher.py).

    python -m pytest_medpubsub.k8s.designs --out build/manifests   # dispatcher-<overlay>.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_medpubsub.designs.dispatcher import OVERLAY_PREFIX, OVERLAYS_DIR
from pytest_medpubsub.k8s.check import check_objects, crd_schemas_or_note, harness_topics
from pytest_medpubsub.k8s.dispatcher import dispatcher_findings
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, load_documents
from pytest_medpubsub.k8s.render import RenderError, render
from pytest_medpubsub.k8s.schemas import CrdSchemas


def dispatcher_overlays(project_dir: Path) -> list[str]:
    root = project_dir / OVERLAYS_DIR
    return sorted(path.parent.name for path in root.glob("*/kustomization.yaml"))


def render_overlay(project_dir: Path, overlay: str) -> list[Manifest]:
    return load_documents(render(project_dir / OVERLAYS_DIR / overlay))


def dispatcher_render_findings(
    objects: list[Manifest], crds: CrdSchemas | None, external_topics: Iterable[Manifest] = ()
) -> list[Finding]:
    """Every check of a render, the dispatcher's rules in place of the ScaledJob's (a render
    with Kafka outside the cluster is wired against `external_topics`, as in check.py)."""
    kept = [
        finding
        for finding in check_objects(objects, crds, external_topics)
        if not (finding.rule == "wiring.trigger" and finding.object == "ScaledJob")
    ]
    return [*kept, *dispatcher_findings(objects)]


def check_designs(project_dir: Path, crds: CrdSchemas | None) -> list[Finding]:
    findings = []
    topics = harness_topics(project_dir)
    for overlay in dispatcher_overlays(project_dir):
        objects = render_overlay(project_dir, overlay)
        for finding in dispatcher_render_findings(objects, crds, topics):
            findings.append(
                Finding(finding.object, finding.rule, finding.message, f"{OVERLAY_PREFIX}{overlay}")
            )
    return findings


def render_designs(project_dir: Path, out: Path) -> dict[str, Path]:
    """Write `dispatcher-<overlay>.yaml` into `out` for each overlay; their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for overlay in dispatcher_overlays(project_dir):
        target = out / f"{OVERLAY_PREFIX}{overlay}.yaml"
        target.write_text(render(project_dir / OVERLAYS_DIR / overlay))
        written[f"{OVERLAY_PREFIX}{overlay}"] = target
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.k8s.designs",
        description="Render and check the dispatcher design's overlays (k8s/dispatcher-overlays).",
    )
    parser.add_argument("--project", type=Path, default=Path("."), help="the checkout")
    parser.add_argument("--out", type=Path, help="also write dispatcher-<overlay>.yaml here")
    arguments = parser.parse_args(argv)
    try:
        if arguments.out is not None:
            for path in render_designs(arguments.project, arguments.out).values():
                print(f"rendered {path}")
        findings = check_designs(arguments.project, crd_schemas_or_note())
    except RenderError as error:
        print(f"designs: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if findings:
        return 1
    print("the dispatcher design's overlays pass every offline check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
