"""Offline proof of the Kafka identities on Kubernetes (k8s/components/secure-kafka): each
client logs in as its own KafkaUser, no KafkaUser has more rights than its service needs, KEDA
logs in as `keda`; and a render of a Kafka of the user's own refers to none of it. Each rule is
shown to fail, naming the object and the rule, on a manifest broken on purpose."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_medpubsub.k8s.check import check_objects, harness_topics
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest
from pytest_medpubsub.kafka.security import grants
from tests.conftest import find, rule_hit

PROJECT = Path(__file__).resolve().parents[1]
SECURED = ("existing", "existing-preloaded", "kind", "minikube")  # with components/secure-kafka
PATIENT = "Deployment/medpubsub/patient"
MAKERS = "ScaledJob/medpubsub/medicine"
Mutation = Callable[[list[Manifest]], None]


@pytest.fixture
def secured_renders(renders: dict[str, list[Manifest]]) -> dict[str, list[Manifest]]:
    """Every overlay's render (the session's, tests/conftest.py), the secured ones among them."""
    return renders


@pytest.fixture
def kind(secured_renders: dict[str, list[Manifest]]) -> list[Manifest]:
    return copy.deepcopy(secured_renders["kind"])


def env_of(obj: Manifest) -> list[dict[str, Any]]:
    spec = obj["spec"]
    template = spec["jobTargetRef"]["template"] if "jobTargetRef" in spec else spec["template"]
    env: list[dict[str, Any]] = template["spec"]["containers"][0]["env"]
    return env


def entry(obj: Manifest, name: str) -> dict[str, Any]:
    return next(e for e in env_of(obj) if e["name"] == name)


def acls(objects: list[Manifest], user: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(objects, "KafkaUser", user)["spec"]["authorization"]["acls"]
    return rules


def patient(o: list[Manifest]) -> Manifest:
    return find(o, "Deployment", "patient")


def makers(o: list[Manifest]) -> Manifest:
    return find(o, "ScaledJob", "medicine")


def remove(o: list[Manifest], kind: str, name: str) -> None:
    o.remove(find(o, kind, name))


def trigger_auth(o: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(o, "TriggerAuthentication", "keda-kafka")["spec"]
    return spec


# --------------------------------------------------------------------------- as built


def test_every_client_logs_in_as_its_own_kafka_user(
    secured_renders: dict[str, list[Manifest]],
) -> None:
    for overlay in SECURED:
        objects = secured_renders[overlay]
        for obj, user in ((patient(objects), "patient"), (makers(objects), "medicine")):
            assert entry(obj, "MEDPUBSUB_KAFKA_SASL_USERNAME")["value"] == user
            assert entry(obj, "MEDPUBSUB_KAFKA_SASL_PASSWORD")["valueFrom"] == {
                "secretKeyRef": {"name": user, "key": "password"}
            }
        kafka = find(objects, "Kafka", "medpubsub")["spec"]["kafka"]
        assert kafka["authorization"] == {"type": "simple"}
        for listener in kafka["listeners"]:
            assert listener["authentication"] == {"type": "scram-sha-512"}, listener["name"]
        assert makers(objects)["spec"]["triggers"][0]["authenticationRef"] == {"name": "keda-kafka"}


def test_the_kafka_users_carry_exactly_the_grants_of_the_embedded_broker(
    secured_renders: dict[str, list[Manifest]],
) -> None:
    objects = secured_renders["kind"]
    for identity, identity_grants in grants().items():
        rendered = {
            (r["resource"]["type"], r["resource"]["name"], r["resource"]["patternType"],
             tuple(r["operations"]))
            for r in acls(objects, identity)
        }  # fmt: skip
        assert rendered == {(g.resource, g.name, g.pattern, g.operations) for g in identity_grants}


def test_a_kafka_of_your_own_gets_no_logins(secured_renders: dict[str, list[Manifest]]) -> None:
    """The bring-your-own-Kafka renders run against an open broker: no Secret to wait for."""
    for overlay in ("external-kafka", "external-kafka-preloaded"):
        text = str(secured_renders[overlay])
        assert "secretKeyRef" not in text, overlay
        assert "authenticationRef" not in text, overlay
        assert "SASL" not in text, overlay


# --------------------------------------------------------------------------- each rule can fail


def literal_password(o: list[Manifest]) -> None:
    password = entry(patient(o), "MEDPUBSUB_KAFKA_SASL_PASSWORD")
    password.pop("valueFrom")
    password["value"] = "hunter2"


def _add_acl(user: str, rule: dict[str, Any]) -> Mutation:
    return lambda o: acls(o, user).append(rule)


BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("patient-as-maker", lambda o: entry(patient(o), "MEDPUBSUB_KAFKA_SASL_USERNAME").update(
        {"value": "medicine"}), PATIENT, "security.kafka-user"),
    ("maker-reads-patients-password", lambda o: entry(makers(o), "MEDPUBSUB_KAFKA_SASL_PASSWORD")[
        "valueFrom"]["secretKeyRef"].update({"name": "patient"}), MAKERS, "security.kafka-user"),
    ("password-in-the-manifest", literal_password, PATIENT, "security.kafka-user"),
    ("patient-without-sasl", lambda o: env_of(patient(o)).remove(entry(
        patient(o), "MEDPUBSUB_KAFKA_SECURITY_PROTOCOL")), PATIENT, "security.kafka-user"),
    ("no-kafka-user-for-makers", lambda o: remove(o, "KafkaUser", "medicine"), MAKERS,
     "security.kafka-user"),
    ("tls-user", lambda o: find(o, "KafkaUser", "patient")["spec"]["authentication"].update(
        {"type": "tls"}), PATIENT, "security.kafka-user"),
    ("wildcard-topic", _add_acl("observer", {"resource": {"type": "topic", "name": "*",
        "patternType": "literal"}, "operations": ["Read"]}), "KafkaUser/medpubsub/observer",
     "security.acls"),
    ("all-operations", lambda o: acls(o, "patient")[0].update({"operations": ["All"]}),
     "KafkaUser/medpubsub/patient", "security.acls"),
    ("keda-reads-orders", lambda o: acls(o, "keda")[0]["operations"].append("Read"),
     "KafkaUser/medpubsub/keda", "security.acls"),
    ("patient-in-the-makers-group", _add_acl("patient", {"resource": {"type": "group",
        "name": "medicine", "patternType": "literal"}, "operations": ["Read"]}),
     "KafkaUser/medpubsub/patient", "security.acls"),
    ("maker-any-transactional-id", lambda o: acls(o, "medicine")[4]["resource"].update(
        {"name": ""}), "KafkaUser/medpubsub/medicine", "security.acls"),
    ("cluster-rights", _add_acl("observer", {"resource": {"type": "cluster"},
        "operations": ["Describe"]}), "KafkaUser/medpubsub/observer", "security.acls"),
    ("unknown-user", lambda o: o.append({**copy.deepcopy(find(o, "KafkaUser", "keda")),
        "metadata": {"name": "root", "namespace": "medpubsub",
                     "labels": find(o, "KafkaUser", "keda")["metadata"]["labels"]}}),
     "KafkaUser/medpubsub/root", "security.acls"),
    ("no-authentication-ref", lambda o: makers(o)["spec"]["triggers"][0].pop(
        "authenticationRef"), MAKERS, "security.trigger-auth"),
    ("keda-as-maker", lambda o: trigger_auth(o)["secretTargetRef"][0].update(
        {"name": "medicine"}), MAKERS, "security.trigger-auth"),
    ("keda-without-sasl", lambda o: trigger_auth(o)["configMapTargetRef"].pop(0), MAKERS,
     "security.trigger-auth"),
    ("missing-trigger-authentication", lambda o: remove(o, "TriggerAuthentication",
        "keda-kafka"), MAKERS, "security.secret-ref"),
    ("secret-nobody-makes", lambda o: entry(patient(o), "MEDPUBSUB_KAFKA_SASL_PASSWORD")[
        "valueFrom"]["secretKeyRef"].update({"name": "patients"}), PATIENT,
     "security.secret-ref"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "obj", "rule"),
    [pytest.param(mutate, obj, rule, id=name) for name, mutate, obj, rule in BROKEN],
)
def test_a_broken_identity_is_reported_by_object_and_rule(
    kind: list[Manifest], mutate: Mutation, obj: str, rule: str
) -> None:
    assert check_objects(kind, crds=None) == []
    mutate(kind)
    rule_hit(check_objects(kind, crds=None), obj, rule)


def test_a_kafka_of_your_own_must_not_refer_to_secrets_or_logins(
    secured_renders: dict[str, list[Manifest]],
) -> None:
    """What the secure component would break if it were applied to a bring-your-own render."""
    external = copy.deepcopy(secured_renders["external-kafka"])
    topics = harness_topics(PROJECT)
    assert check_objects(external, None, topics) == []
    env_of(patient(external)).append(
        {"name": "MEDPUBSUB_KAFKA_SASL_PASSWORD",
         "valueFrom": {"secretKeyRef": {"name": "patient", "key": "password"}}}
    )  # fmt: skip
    makers(external)["spec"]["triggers"][0]["authenticationRef"] = {"name": "keda-kafka"}
    findings: list[Finding] = check_objects(external, None, topics)
    rule_hit(findings, PATIENT, "security.secret-ref")
    rule_hit(findings, MAKERS, "security.secret-ref")
