"""Offline rules for Kafka identities: who logs in as whom, and with which rights.

On a Kafka whose listeners authenticate (k8s/components/secure-kafka), a client that does not log
in is refused, one that logs in as another service breaks least privilege, and a KafkaUser with
more ACLs than its service needs is a hole the broker will not report. So:

- `security.kafka-user`: every client container (the patient Deployment, the makers' ScaledJob)
  logs in as its own service's KafkaUser (SASL/SCRAM-SHA-512, MEDPUBSUB_KAFKA_SASL_USERNAME) and
  reads the password from that user's Secret (`secretKeyRef`, key `password`).
- `security.acls`: every KafkaUser is a known identity and none of its ACL rules allows more than
  `pytest_medpubsub.kafka.security.grants()` gives that identity; never a `*` resource, never `All`.
- `security.trigger-auth`: when the listener the ScaledJob's trigger dials authenticates, the
  trigger has an `authenticationRef` to a TriggerAuthentication that gives KEDA `sasl`, `username`
  and the `keda` user's password from its Secret.
- `security.secret-ref`: nothing refers to a Secret or a TriggerAuthentication the render does not
  make (or, for a KafkaUser, that Strimzi does not make): a Kafka of the user's own has neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import (
    Manifest,
    dig,
    mapping,
    name,
    object_id,
    of_kind,
    sequence,
)
from pytest_medpubsub.kafka.security import SASL_MECHANISM, Grant, grants

_CLIENTS = {"patient": ("spec", "template"), "medicine": ("spec", "jobTargetRef", "template")}
_NAME_LABEL = "app.kubernetes.io/name"
_KEDA_SASL = {"SCRAM-SHA-512": "scram_sha512"}


def kafka_user_findings(objects: Iterable[Manifest]) -> list[Finding]:
    """Every broken identity rule of one render."""
    objects = list(objects)
    users = {name(user): user for user in of_kind(objects, "KafkaUser")}
    secrets = {name(secret) for secret in of_kind(objects, "Secret")} | set(users)
    authenticating = _authenticating_ports(objects)
    findings: list[Finding] = []
    for owner, service, container in _client_containers(objects):
        findings += _secret_refs(owner, container, secrets)
        if authenticating:
            findings += _logs_in_as_itself(owner, service, container, users)
    for user in users.values():
        findings += _acl_findings(user)
    for job in of_kind(objects, "ScaledJob"):
        findings += _trigger_findings(job, objects, users, authenticating)
    return findings


# -- clients -------------------------------------------------------------------------------------


def _client_containers(objects: list[Manifest]) -> list[tuple[str, str, Mapping[str, Any]]]:
    found = []
    for obj in objects:
        for service, path in _CLIENTS.items():
            template = mapping(dig(obj, *path))
            if mapping(dig(template, "metadata", "labels")).get(_NAME_LABEL) != service:
                continue
            for container in map(mapping, sequence(dig(template, "spec", "containers"))):
                found.append((object_id(obj), service, container))
    return found


def _env(container: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(e.get("name")): e for e in map(mapping, sequence(container.get("env")))}


def _secret_refs(owner: str, container: Mapping[str, Any], secrets: set[str]) -> list[Finding]:
    findings = []
    for variable, entry in _env(container).items():
        ref = mapping(dig(entry, "valueFrom", "secretKeyRef"))
        if ref and ref.get("name") not in secrets:
            findings.append(
                Finding(
                    owner,
                    "security.secret-ref",
                    f"container {container.get('name')}: {variable} comes from Secret "
                    f"{ref.get('name')!r}, which neither this render nor a KafkaUser of it makes",
                )
            )
    return findings


def _logs_in_as_itself(
    owner: str, service: str, container: Mapping[str, Any], users: Mapping[str, Manifest]
) -> list[Finding]:
    env = _env(container)

    def broken(message: str) -> list[Finding]:
        return [
            Finding(owner, "security.kafka-user", f"container {container.get('name')}: {message}")
        ]

    literal = {k: str(e["value"]) for k, e in env.items() if "value" in e}
    if literal.get("MEDPUBSUB_KAFKA_SECURITY_PROTOCOL") not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return broken("the Kafka listener authenticates, but the client does not use SASL")
    if literal.get("MEDPUBSUB_KAFKA_SASL_MECHANISM") != SASL_MECHANISM:
        return broken(f"MEDPUBSUB_KAFKA_SASL_MECHANISM must be {SASL_MECHANISM}")
    username = literal.get("MEDPUBSUB_KAFKA_SASL_USERNAME")
    if username != service:
        return broken(f"logs in as {username!r}, not as its own KafkaUser {service!r}")
    user = users.get(service)
    if user is None:
        return broken(f"there is no KafkaUser {service!r} for it")
    if dig(user, "spec", "authentication", "type") != "scram-sha-512":
        return broken(f"KafkaUser {service!r} does not authenticate with scram-sha-512")
    ref = mapping(dig(env.get("MEDPUBSUB_KAFKA_SASL_PASSWORD", {}), "valueFrom", "secretKeyRef"))
    if ref.get("name") != service or ref.get("key") != "password":
        return broken(
            f"MEDPUBSUB_KAFKA_SASL_PASSWORD must come from Secret {service!r}, key 'password' "
            "(the KafkaUser's own Secret)"
        )
    return []


# -- ACLs ----------------------------------------------------------------------------------------


def _acl_findings(user: Manifest) -> list[Finding]:
    identity = name(user)
    allowed = grants().get(identity)
    owner = object_id(user)
    if allowed is None:
        return [
            Finding(owner, "security.acls", f"{identity!r} is no identity of the system's services")
        ]
    findings = []
    for rule in map(mapping, sequence(dig(user, "spec", "authorization", "acls"))):
        if rule.get("type", "allow") == "deny":
            continue  # a deny rule only narrows
        problem = _broader(rule, allowed)
        if problem:
            findings.append(Finding(owner, "security.acls", problem))
    return findings


def _broader(rule: Mapping[str, Any], allowed: tuple[Grant, ...]) -> str | None:
    """Why `rule` allows more than the identity's grants (None: it does not)."""
    resource = mapping(rule.get("resource"))
    kind = resource.get("type")
    resource_name = resource.get("name")
    pattern = resource.get("patternType", "literal")
    operations = {str(op) for op in sequence(rule.get("operations"))}
    where = f"{kind} {resource_name!r} ({pattern})"
    if resource_name == "*" or "All" in operations:
        return f"{where} allows {sorted(operations)}: no rule may name '*' or All"
    for grant in allowed:
        if (grant.resource, grant.name, grant.pattern) == (kind, resource_name, pattern):
            extra = operations - set(grant.operations)
            if extra:
                return f"{where} allows {sorted(extra)} beyond what the service needs"
            return None
    return f"{where} is no resource the service needs"


# -- KEDA ----------------------------------------------------------------------------------------


def _authenticating_ports(objects: list[Manifest]) -> set[int]:
    """The ports of the Strimzi listeners that authenticate clients."""
    return {
        int(listener.get("port", 0))
        for kafka in of_kind(objects, "Kafka")
        for listener in map(mapping, sequence(dig(kafka, "spec", "kafka", "listeners")))
        if mapping(listener.get("authentication")).get("type")
    }


def _trigger_findings(
    job: Manifest,
    objects: list[Manifest],
    users: Mapping[str, Manifest],
    authenticating: set[int],
) -> list[Finding]:
    owner = object_id(job)
    auths = {name(t): t for t in of_kind(objects, "TriggerAuthentication")}
    config_maps = {name(c): mapping(c.get("data")) for c in of_kind(objects, "ConfigMap")}
    findings = []
    for trigger in map(mapping, sequence(dig(job, "spec", "triggers"))):
        if trigger.get("type") != "kafka":
            continue
        ref = mapping(trigger.get("authenticationRef")).get("name")
        bootstrap = str(mapping(trigger.get("metadata")).get("bootstrapServers", ""))
        port = bootstrap.rpartition(":")[2]
        needs_auth = port.isdigit() and int(port) in authenticating

        def broken(message: str) -> None:
            findings.append(Finding(owner, "security.trigger-auth", message))

        if ref is None:
            if needs_auth:
                broken(f"the listener at {bootstrap} authenticates; the trigger needs an "
                       "authenticationRef")  # fmt: skip
            continue
        auth = auths.get(str(ref))
        if auth is None:
            findings.append(
                Finding(owner, "security.secret-ref",
                        f"authenticationRef {ref!r} names no TriggerAuthentication of this render")
            )  # fmt: skip
            continue
        if needs_auth:
            problem = _keda_login_problem(auth, config_maps, users)
            if problem:
                broken(f"TriggerAuthentication {ref!r}: {problem}")
    return findings


def _keda_login_problem(
    auth: Manifest, config_maps: Mapping[str, Mapping[str, Any]], users: Mapping[str, Manifest]
) -> str | None:
    """Why KEDA would not log in as `keda` with this TriggerAuthentication (None: it would)."""
    spec = mapping(auth.get("spec"))
    literal: dict[str, str] = {}
    for ref in map(mapping, sequence(spec.get("configMapTargetRef"))):
        value = config_maps.get(str(ref.get("name")), {}).get(str(ref.get("key")))
        if value is not None:
            literal[str(ref.get("parameter"))] = str(value)
    secret_refs = {
        str(ref.get("parameter")): ref
        for ref in map(mapping, sequence(spec.get("secretTargetRef")))
    }
    if literal.get("sasl") != _KEDA_SASL[SASL_MECHANISM] and "sasl" not in secret_refs:
        return f"it must give `sasl` {_KEDA_SASL[SASL_MECHANISM]!r}"
    if literal.get("username") != "keda":
        return "it must give `username` 'keda' (KEDA's own KafkaUser)"
    password = secret_refs.get("password")
    if password is None or password.get("name") != "keda" or password.get("key") != "password":
        return "`password` must come from the keda KafkaUser's Secret (key 'password')"
    if "keda" not in users:
        return "there is no KafkaUser 'keda'"
    return None
