"""Offline rules of the dispatcher design (k8s/components/dispatcher), on a rendered overlay.

Rules (identifiers in brackets), checked when a render holds the dispatcher's Deployment:

- [dispatcher.design] one design per render: the dispatcher and the medicine ScaledJob would both
  make every order (two groups consuming tabs.orders);
- [dispatcher.rbac] the dispatcher's ServiceAccount is bound (RoleBinding, same namespace) to a
  namespaced Role that allows `create`, `list`/`watch` and `delete` on `batch` `jobs` and nothing
  else; no ClusterRoleBinding binds it;
- [dispatcher.job] the Job template the dispatcher mounts (ConfigMap key named by
  DISPATCHER_JOB_TEMPLATE) is a valid `batch/v1` Job for Kubernetes 1.30, hardened like the
  ScaledJob's pods (the policy of policy.py), runs `medpubsub make-order` with `backoffLimit: 0`
  (the dispatcher retries, bounded) and `restartPolicy: Never`, never mounts an API token, and
  its maker settings are valid;
- [dispatcher.settings] the dispatcher's DISPATCHER_* variables are valid, it creates Jobs
  (`DISPATCHER_LAUNCHER=job`) from a template file that a ConfigMap volume provides, and it runs
  as the ServiceAccount of the Role (with its token mounted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, TypeVar

import yaml
from pydantic_settings import BaseSettings

from medpubsub.dispatcher.settings import DispatcherSettings
from medpubsub.settings import MedicineSettings
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, dig, mapping, name, object_id, of_kind, sequence
from pytest_medpubsub.k8s.policy import security_findings
from pytest_medpubsub.k8s.schemas import builtin_findings

DISPATCHER = "dispatcher"
NAME_LABEL = "app.kubernetes.io/name"
ALLOWED_VERBS = frozenset({"create", "get", "list", "watch", "delete"})
NEEDED_VERBS = ({"create"}, {"list", "watch"}, {"delete"})


def dispatcher_deployment(objects: Iterable[Manifest]) -> Manifest | None:
    for deployment in of_kind(objects, "Deployment"):
        if dig(deployment, "spec", "template", "metadata", "labels", NAME_LABEL) == DISPATCHER:
            return deployment
    return None


def dispatched_job_templates(objects: Iterable[Manifest]) -> list[tuple[Manifest, str, Manifest]]:
    """`(ConfigMap, key, Job)` for every Job template a ConfigMap of the dispatcher holds (the
    Jobs it creates are not objects of the render, so image names and builds look here too)."""
    found = []
    for config_map in of_kind(objects, "ConfigMap"):
        if dig(config_map, "metadata", "labels", NAME_LABEL) != DISPATCHER:
            continue
        for key, text in mapping(config_map.get("data")).items():
            document = yaml.safe_load(text) if isinstance(text, str) else None
            if isinstance(document, dict) and document.get("kind") == "Job":
                found.append((config_map, str(key), document))
    return found


def dispatcher_findings(objects: Iterable[Manifest]) -> list[Finding]:
    """Every broken rule of the dispatcher design in one render (none without a dispatcher)."""
    objects = list(objects)
    deployment = dispatcher_deployment(objects)
    if deployment is None:
        return []
    owner = object_id(deployment)
    findings: list[Finding] = []
    if of_kind(objects, "ScaledJob"):
        findings.append(
            Finding(owner, "dispatcher.design", "a render with the dispatcher has no ScaledJob")
        )
    pod = mapping(dig(deployment, "spec", "template", "spec"))
    containers = sequence(pod.get("containers"))
    if not containers:
        return [*findings, Finding(owner, "dispatcher.settings", "no container")]
    container = mapping(containers[0])
    env = {
        str(entry.get("name")): str(entry["value"])
        for entry in map(mapping, sequence(container.get("env")))
        if "value" in entry
    }
    findings += _settings(owner, env, pod)
    findings += _rbac(objects, owner, deployment, pod)
    template = _job_template(
        objects, owner, env=env, pod=pod, container=container, findings=findings
    )
    if template is not None:
        findings += job_findings(template)
    return findings


def _settings(owner: str, env: Mapping[str, str], pod: Mapping[str, Any]) -> list[Finding]:
    findings = []
    values = {
        key.removeprefix("DISPATCHER_").lower(): value
        for key, value in env.items()
        if key.startswith("DISPATCHER_")
    }
    try:
        settings = _only(DispatcherSettings, values)
    except ValueError as error:
        return [Finding(owner, "dispatcher.settings", f"DISPATCHER_*: {error}".splitlines()[0])]
    if settings.launcher != "job":
        findings.append(
            Finding(owner, "dispatcher.settings", "DISPATCHER_LAUNCHER must be job on a cluster")
        )
    if pod.get("automountServiceAccountToken") is False:
        findings.append(
            Finding(owner, "dispatcher.settings", "the dispatcher needs its API token mounted")
        )
    return findings


def _rbac(
    objects: list[Manifest], owner: str, deployment: Manifest, pod: Mapping[str, Any]
) -> list[Finding]:
    findings = []
    account = str(pod.get("serviceAccountName") or "default")
    namespace = str(dig(deployment, "metadata", "namespace") or "default")
    for binding in of_kind(objects, "ClusterRoleBinding"):
        if any(_is_account(s, account, namespace) for s in sequence(binding.get("subjects"))):
            findings.append(
                Finding(object_id(binding), "dispatcher.rbac", f"binds {account} cluster-wide")
            )
    roles = {
        name(role): role
        for role in of_kind(objects, "Role")
        if dig(role, "metadata", "namespace") == namespace
    }
    bound = [
        roles.get(str(dig(binding, "roleRef", "name")))
        for binding in of_kind(objects, "RoleBinding")
        if dig(binding, "metadata", "namespace") == namespace
        and dig(binding, "roleRef", "kind") == "Role"
        and any(_is_account(s, account, namespace) for s in sequence(binding.get("subjects")))
    ]
    if not any(bound):
        return [
            *findings,
            Finding(owner, "dispatcher.rbac", f"no Role in {namespace} is bound to {account}"),
        ]
    verbs: set[str] = set()
    for role in filter(None, bound):
        for rule in map(mapping, sequence(role.get("rules"))):
            where = object_id(role)
            groups, resources = (
                set(sequence(rule.get("apiGroups"))),
                set(sequence(rule.get("resources"))),
            )
            rule_verbs = set(map(str, sequence(rule.get("verbs"))))
            if groups != {"batch"} or resources != {"jobs"} or rule_verbs - ALLOWED_VERBS:
                findings.append(
                    Finding(
                        where,
                        "dispatcher.rbac",
                        f"allows {sorted(rule_verbs)} on {sorted(groups)}/{sorted(resources)};"
                        f" only {sorted(ALLOWED_VERBS)} on batch/jobs",
                    )
                )
            else:
                verbs |= rule_verbs
    for needed in NEEDED_VERBS:
        if not needed & verbs:
            findings.append(
                Finding(owner, "dispatcher.rbac", f"{account} may not {'/'.join(sorted(needed))}")
            )
    return findings


Settings = TypeVar("Settings", bound=BaseSettings)


def _only(settings_class: type[Settings], values: Mapping[str, Any]) -> Settings:
    """The settings from `values` alone: the prefix is swapped for one nobody sets, so this
    process's own environment cannot leak in."""
    factory: Any = settings_class
    settings: Settings = factory(_env_prefix="_MEDPUBSUB_NOBODY_SETS_", _env_file=None, **values)
    return settings


def _is_account(subject: object, account: str, namespace: str) -> bool:
    subject = mapping(subject)
    return (
        subject.get("kind") == "ServiceAccount"
        and subject.get("name") == account
        and subject.get("namespace", namespace) == namespace
    )


def _job_template(
    objects: list[Manifest],
    owner: str,
    *,
    env: Mapping[str, str],
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    findings: list[Finding],
) -> Manifest | None:
    """The Job template that DISPATCHER_JOB_TEMPLATE names, from the ConfigMap mounted there."""
    path = PurePosixPath(env.get("DISPATCHER_JOB_TEMPLATE", str(DispatcherSettings().job_template)))
    volumes = {str(v.get("name")): v for v in map(mapping, sequence(pod.get("volumes")))}
    for mount in map(mapping, sequence(container.get("volumeMounts"))):
        if PurePosixPath(str(mount.get("mountPath"))) != path.parent:
            continue
        config_map = str(dig(volumes.get(str(mount.get("name")), {}), "configMap", "name"))
        for candidate in of_kind(objects, "ConfigMap"):
            text = mapping(candidate.get("data")).get(path.name)
            if name(candidate) == config_map and isinstance(text, str):
                document = yaml.safe_load(text)
                if isinstance(document, dict):
                    return document
    findings.append(
        Finding(owner, "dispatcher.settings", f"no ConfigMap volume provides {path} (the Job)")
    )
    return None


def job_findings(job: Manifest) -> list[Finding]:
    """[dispatcher.job] The dispatched Job template: valid, hardened, one order, no retries."""
    job = dict(job) | {"metadata": dict(mapping(job.get("metadata"))) | {"name": "maker-template"}}
    owner = "dispatched Job template"
    findings = [
        Finding(owner, "dispatcher.job", f"{f.rule}: {f.message}")
        for f in [*builtin_findings(job), *security_findings([job])]
    ]
    if job.get("apiVersion") != "batch/v1" or job.get("kind") != "Job":
        findings.append(Finding(owner, "dispatcher.job", "must be a batch/v1 Job"))
    if dig(job, "spec", "backoffLimit") != 0:
        findings.append(Finding(owner, "dispatcher.job", "backoffLimit must be 0"))
    pod = mapping(dig(job, "spec", "template", "spec"))
    if pod.get("restartPolicy") != "Never":
        findings.append(Finding(owner, "dispatcher.job", "restartPolicy must be Never"))
    if pod.get("automountServiceAccountToken") is not False:
        findings.append(Finding(owner, "dispatcher.job", "a maker must not mount an API token"))
    for container in map(mapping, sequence(pod.get("containers"))):
        command = [
            *map(str, sequence(container.get("command"))),
            *map(str, sequence(container.get("args"))),
        ]
        if command[-2:] != ["medpubsub", "make-order"]:
            findings.append(
                Finding(owner, "dispatcher.job", f"runs {command}, not medpubsub make-order")
            )
        values = {
            str(e.get("name")).removeprefix("MEDICINE_").lower(): e["value"]
            for e in map(mapping, sequence(container.get("env")))
            if str(e.get("name")).startswith("MEDICINE_") and "value" in e
        }
        try:
            _only(MedicineSettings, values)
        except ValueError as error:
            findings.append(Finding(owner, "dispatcher.job", str(error).splitlines()[0]))
    return findings
