"""What the test modules share: the project's root, the offline k8s renders and CRDs, and the
`kafka` marker.

The marker is set here, from the fixtures a test asks for, rather than by hand in every module:
a test that needs the embedded broker (directly or through the running system) is `kafka`, and
`make check` (`-m "not kafka"`) leaves exactly those out. A marker written by hand would be
forgotten on the next such test and make the fast tier slow again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_medpubsub.k8s.check import crd_schemas
from pytest_medpubsub.k8s.crds import CrdsUnavailable
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, load_documents
from pytest_medpubsub.k8s.render import (
    OVERLAYS_DIR,
    RenderError,
    kustomize_command,
    overlays,
    render,
)
from pytest_medpubsub.k8s.schemas import CrdSchemas

PROJECT = Path(__file__).resolve().parents[1]

KAFKA_FIXTURES = frozenset({"medpubsub_kafka", "medpubsub_system", "medpubsub_platform"})
"""Fixtures that start the embedded broker (or stand on one)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def require_kustomize() -> None:
    """Skip, saying why, when neither kubectl nor kustomize can render an overlay."""
    try:
        kustomize_command()
    except RenderError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def renders() -> dict[str, list[Manifest]]:
    """Every overlay of k8s/overlays rendered once for the session, by overlay name.

    Tests that break a render on purpose take a `copy.deepcopy` of one.
    """
    require_kustomize()
    return {
        overlay: load_documents(render(PROJECT / OVERLAYS_DIR / overlay))
        for overlay in overlays(PROJECT)
    }


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    """The pinned Strimzi and KEDA CRDs' validators (fetched into the user cache once)."""
    try:
        return crd_schemas()
    except CrdsUnavailable as error:
        pytest.skip(f"Strimzi and KEDA objects are not schema-checked: {error}")


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The object of `kind` named `name` in a render."""
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def rule_hit(findings: list[Finding], obj: str, rule: str) -> Finding:
    """The finding for `obj` and `rule`; its text names both, as a reader sees it."""
    hits = [f for f in findings if f.object == obj and f.rule == rule]
    assert hits, f"no {rule} finding for {obj}; got: {[str(f) for f in findings]}"
    assert obj in str(hits[0])
    assert rule in str(hits[0])
    return hits[0]
