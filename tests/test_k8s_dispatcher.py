"""Offline proof of the dispatcher design's manifests: its overlays render and pass every check,
and each dispatcher rule fails, naming the object and the rule, on a manifest broken on purpose."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub.k8s.designs import (
    check_designs,
    dispatcher_overlays,
    dispatcher_render_findings,
    render_designs,
    render_overlay,
)
from pytest_medpubsub.k8s.objects import Manifest
from pytest_medpubsub.k8s.schemas import CrdSchemas
from tests.conftest import PROJECT, find, require_kustomize, rule_hit

DISPATCHER = "Deployment/medpubsub/dispatcher"
ROLE = "Role/medpubsub/dispatcher"
JOB = "dispatched Job template"


@pytest.fixture(scope="module")
def rendered() -> list[Manifest]:
    require_kustomize()
    return render_overlay(PROJECT, "kind")


@pytest.fixture
def kind(rendered: list[Manifest]) -> list[Manifest]:
    """A private copy of the dispatcher's kind render, to break."""
    return copy.deepcopy(rendered)


def dispatcher_container(objects: list[Manifest]) -> dict[str, Any]:
    container: dict[str, Any] = find(objects, "Deployment", "dispatcher")["spec"]["template"][
        "spec"
    ]["containers"][0]
    return container


def set_env(container: dict[str, Any], name: str, value: str) -> None:
    container["env"] = [e for e in container["env"] if e["name"] != name]
    container["env"].append({"name": name, "value": value})


def edit_job(objects: list[Manifest], change: Callable[[dict[str, Any]], None]) -> None:
    """Change the dispatched Job template inside its ConfigMap."""
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    job = yaml.safe_load(config_map["data"]["dispatched-job.yaml"])
    change(job)
    config_map["data"]["dispatched-job.yaml"] = yaml.safe_dump(job)


def test_the_dispatcher_overlays_render_without_a_scaledjob(rendered: list[Manifest]) -> None:
    assert dispatcher_overlays(PROJECT) == [
        "existing",
        "external-kafka",
        "external-kafka-preloaded",
        "kind",
    ]
    kinds = sorted(o["kind"] for o in rendered)
    assert "ScaledJob" not in kinds
    assert {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"} <= set(kinds)
    assert kinds.count("Deployment") == 2  # the patients and the dispatcher


def test_the_dispatcher_overlays_pass_every_offline_check(
    rendered: list[Manifest], crds: CrdSchemas
) -> None:
    assert [str(f) for f in check_designs(PROJECT, crds)] == []


def test_make_manifests_writes_the_dispatcher_render(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    written = render_designs(PROJECT, tmp_path)
    assert sorted(written) == [
        "dispatcher-existing",
        "dispatcher-external-kafka",
        "dispatcher-external-kafka-preloaded",
        "dispatcher-kind",
    ]
    for path in written.values():
        text = path.read_text()
        assert "kind: Role\n" in text
        assert "kind: ScaledJob\n" not in text  # without-scaledjob took it out


BROKEN: list[tuple[str, Callable[[list[Manifest]], None], str, str]] = [
    (
        "both designs at once",
        lambda objects: objects.append(
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "m"}}
        ),
        DISPATCHER,
        "dispatcher.design",
    ),
    (
        "a Role that may touch pods",
        lambda objects: find(objects, "Role", "dispatcher")["rules"].append(
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}
        ),
        ROLE,
        "dispatcher.rbac",
    ),
    (
        "a Role that may not delete Jobs",
        lambda objects: find(objects, "Role", "dispatcher")["rules"][0].update(
            verbs=["create", "list", "watch"]
        ),
        DISPATCHER,
        "dispatcher.rbac",
    ),
    (
        "a cluster-wide binding",
        lambda objects: objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "dispatcher-everywhere"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "edit",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "dispatcher", "namespace": "medpubsub"}
                ],
            }
        ),
        "ClusterRoleBinding/dispatcher-everywhere",
        "dispatcher.rbac",
    ),
    (
        "no RoleBinding",
        lambda objects: objects.remove(find(objects, "RoleBinding", "dispatcher")),
        DISPATCHER,
        "dispatcher.rbac",
    ),
    (
        "a Job that retries itself",
        lambda objects: edit_job(objects, lambda job: job["spec"].update(backoffLimit=3)),
        JOB,
        "dispatcher.job",
    ),
    (
        "a maker with the API token",
        lambda objects: edit_job(
            objects,
            lambda job: job["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
        ),
        JOB,
        "dispatcher.job",
    ),
    (
        "a maker with a writable root filesystem",
        lambda objects: edit_job(
            objects,
            lambda job: job["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
                readOnlyRootFilesystem=False
            ),
        ),
        JOB,
        "dispatcher.job",
    ),
    (
        "a maker that runs the capacity maker",
        lambda objects: edit_job(
            objects,
            lambda job: job["spec"]["template"]["spec"]["containers"][0].update(
                command=["python", "-m", "medpubsub", "medicine"]
            ),
        ),
        JOB,
        "dispatcher.job",
    ),
    (
        "a maker faster than physics",
        lambda objects: edit_job(
            objects,
            lambda job: set_env(
                job["spec"]["template"]["spec"]["containers"][0], "MEDICINE_TAB_SECONDS", "1"
            ),
        ),
        JOB,
        "dispatcher.job",
    ),
    (
        "processes instead of Jobs",
        lambda objects: set_env(dispatcher_container(objects), "DISPATCHER_LAUNCHER", "process"),
        DISPATCHER,
        "dispatcher.settings",
    ),
    (
        "no maker allowed at all",
        lambda objects: set_env(dispatcher_container(objects), "DISPATCHER_MAX_MAKERS", "0"),
        DISPATCHER,
        "dispatcher.settings",
    ),
    (
        "a template nobody mounts",
        lambda objects: set_env(
            dispatcher_container(objects), "DISPATCHER_JOB_TEMPLATE", "/etc/elsewhere/job.yaml"
        ),
        DISPATCHER,
        "dispatcher.settings",
    ),
    (
        "a dispatcher without its API token",
        lambda objects: find(objects, "Deployment", "dispatcher")["spec"]["template"][
            "spec"
        ].update(automountServiceAccountToken=False),
        DISPATCHER,
        "dispatcher.settings",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "obj", "rule"),
    [pytest.param(m, o, r, id=name) for name, m, o, r in BROKEN],
)
def test_a_broken_dispatcher_manifest_is_reported_by_object_and_rule(
    kind: list[Manifest], mutation: Callable[[list[Manifest]], None], obj: str, rule: str
) -> None:
    assert dispatcher_render_findings(kind, None) == []
    mutation(kind)
    finding = rule_hit(dispatcher_render_findings(kind, None), obj, rule)
    assert rule in str(finding)
