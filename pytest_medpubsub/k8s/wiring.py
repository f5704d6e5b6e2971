"""Do the objects fit together? Names that must agree across Strimzi, KEDA and the services.

A schema accepts a ScaledJob that watches a topic nobody writes to, or a maker group KEDA does
not measure; the system would then run and never scale. These rules (identifiers in brackets)
catch that before a cluster does (the ScaledJob's own rules are in scaledjob_wiring.py):

- [wiring.kafka] exactly one Strimzi `Kafka`, with a plain internal listener, and a dual-role
  `KafkaNodePool` of its cluster (KRaft);
- [wiring.storage] every broker of that cluster keeps its log on a persistent claim (or a JBOD of
  them): a broker pod killed by chaos (`chaos/kill-kafka.json`) must come back with its data, or
  every order it held is lost;
- [wiring.topics] every `KafkaTopic` belongs to that cluster and namespace, and every topic a
  service uses (its `MEDPUBSUB_*_TOPIC` or the default) is one of them;
- [wiring.bootstrap] the ScaledJob trigger and every service talk to the Kafka's bootstrap
  service (`<kafka>-kafka-bootstrap.<namespace>.svc:<plain port>`);
- [wiring.trigger] the trigger parses as KEDA parses it, names the makers' orders topic, counts
  real backlog for a group with no commits (`offsetResetPolicy: earliest` or
  `scaleToZeroOnInvalidOffset`) and keeps the partition cap;
- [wiring.capacity] KEDA's thresholds mean capacity: `lagThreshold` is the orders one maker holds
  (`orders_per_maker`: its `MEDICINE_MAX_WORKERS` over the mean order, with headroom; within
  `MEDICINE_MAX_ORDERS_IN_FLIGHT` when set), so KEDA adds a maker per maker's worth of orders;
  `activationLagThreshold` is what the warm floor holds (`minReplicaCount` makers' worth), so no
  maker is added while the warm ones have room; the scaling strategy counts the warm makers'
  orders once (`custom`, deducting `minReplicaCount`), so the makers settle at one per
  `lagThreshold` orders, the floor included; and `minReplicaCount` keeps at least one warm
  maker, so no first order waits for a cold start;
- [wiring.warm] the makers that stay at rest (`MEDICINE_WARM_MAKERS`) are `minReplicaCount`, and
  one leaves (`MEDICINE_WARM_SECONDS` + the idle timeout) before `activeDeadlineSeconds`, so KEDA
  neither replaces the floor every idle timeout nor has the deadline kill it;
- [wiring.group] the trigger's `consumerGroup` is the makers' `MEDICINE_GROUP_ID`;
- [wiring.partitions] makers never outnumber `maxReplicaCount` or the orders topic's partitions:
  `maxReplicaCount` is above `minReplicaCount` and at most the partitions (a member beyond them
  owns none), the scaling strategy cannot settle above `maxReplicaCount` (`custom` with a
  negative deduction or a running-job percentage below 1 does), and the topic has at least 12
  partitions;
- [wiring.settings] each service's literal environment is valid for its settings class;
- [wiring.pods] a Deployment's selector matches its pod labels and a Job's pods never restart
  (both enforced by the API server, not by the schemas).
- [wiring.external] the listener the host uses has fixed NodePorts, and a kind config maps them to
  the same ports on 127.0.0.1, the address the brokers advertise (`external_listener_findings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from medpubsub.settings import KafkaSettings, MedicineSettings, PatientSettings
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import (
    EXTERNAL_LISTENER,
    NAME_LABEL,
    STRIMZI_CLUSTER_LABEL,
    Manifest,
    dig,
    kafka_listener,
    labels,
    mapping,
    name,
    namespace,
    node_ports,
    object_id,
    of_kind,
    sequence,
)
from pytest_medpubsub.k8s.scaledjob_wiring import scaled_job_findings

_NOBODY_SETS = "MEDPUBSUB_OFFLINE_CHECK_"
PATIENT = "patient"
MEDICINE = "medicine"
TOPIC_VARIABLES = {
    "MEDPUBSUB_ORDERS_TOPIC": "orders_topic",
    "MEDPUBSUB_DELIVERIES_TOPIC": "deliveries_topic",
    "MEDPUBSUB_DLQ_TOPIC": "dlq_topic",
}


def wiring_findings(objects: Iterable[Manifest]) -> list[Finding]:
    """Every broken wiring rule of one render."""
    objects = list(objects)
    findings: list[Finding] = []
    kafkas = of_kind(objects, "Kafka")
    if len(kafkas) != 1:
        return [Finding("Kafka", "wiring.kafka", f"expected one Kafka, found {len(kafkas)}")]
    kafka = kafkas[0]
    findings += _node_pool(objects, kafka)
    bootstrap, bootstrap_findings = _bootstrap_service(kafka)
    findings += bootstrap_findings
    topics, topic_findings = _topics(objects, kafka)
    findings += topic_findings
    services = _services(objects)
    findings += _pods(objects)
    for owner, container in services.values():
        env = _literal_env(container)
        findings += _settings(owner, container, env | _secret_env(container))
        findings += _service_topics(owner, env, topics)
        if bootstrap and env.get("MEDPUBSUB_KAFKA_BOOTSTRAP") not in _addresses(bootstrap):
            findings.append(
                Finding(
                    owner,
                    "wiring.bootstrap",
                    f"container {container.get('name')}: MEDPUBSUB_KAFKA_BOOTSTRAP is "
                    f"{env.get('MEDPUBSUB_KAFKA_BOOTSTRAP')!r}, expected {bootstrap}",
                )
            )
    scaled_jobs = of_kind(objects, "ScaledJob")
    if len(scaled_jobs) != 1:
        findings.append(
            Finding(
                "ScaledJob", "wiring.trigger", f"expected one ScaledJob, found {len(scaled_jobs)}"
            )
        )
    else:
        maker = services.get(MEDICINE)
        maker_env = _literal_env(maker[1]) if maker else {}
        addresses = _addresses(bootstrap) if bootstrap else set()
        findings += scaled_job_findings(scaled_jobs[0], maker_env, bootstrap, addresses, topics)
    return findings


def _node_pool(objects: list[Manifest], kafka: Manifest) -> list[Finding]:
    pools = [
        pool
        for pool in of_kind(objects, "KafkaNodePool")
        if labels(pool).get(STRIMZI_CLUSTER_LABEL) == name(kafka)
    ]
    roles = {role for pool in pools for role in sequence(dig(pool, "spec", "roles"))}
    findings = [
        Finding(
            object_id(pool),
            "wiring.storage",
            f"storage {dig(pool, 'spec', 'storage', 'type') or 'none'}: a restarted broker pod "
            "would come back without its log; use persistent-claim",
        )
        for pool in pools
        if "broker" in sequence(dig(pool, "spec", "roles")) and not _persistent(pool)
    ]
    if {"broker", "controller"} <= roles:
        return findings
    return [
        *findings,
        Finding(
            object_id(kafka),
            "wiring.kafka",
            f"no KafkaNodePool labelled {STRIMZI_CLUSTER_LABEL}: {name(kafka)} has the broker and "
            f"controller roles (found {sorted(roles) or 'none'})",
        ),
    ]


def _persistent(pool: Manifest) -> bool:
    storage = mapping(dig(pool, "spec", "storage"))
    if storage.get("type") == "jbod":
        volumes = [mapping(volume) for volume in sequence(storage.get("volumes"))]
        return bool(volumes) and all(v.get("type") == "persistent-claim" for v in volumes)
    return storage.get("type") == "persistent-claim"


def _bootstrap_service(kafka: Manifest) -> tuple[str | None, list[Finding]]:
    """`<kafka>-kafka-bootstrap.<namespace>.svc:<port>` of the plain internal listener."""
    for listener in map(mapping, sequence(dig(kafka, "spec", "kafka", "listeners"))):
        if listener.get("type") == "internal" and listener.get("tls") is False:
            service = f"{name(kafka)}-kafka-bootstrap.{namespace(kafka)}.svc"
            return f"{service}:{listener.get('port')}", []
    return None, [
        Finding(object_id(kafka), "wiring.kafka", "no internal listener without TLS for the pods")
    ]


def _addresses(bootstrap: str) -> set[str]:
    """The bootstrap service's address, short or with the default cluster domain."""
    host, _, port = bootstrap.rpartition(":")
    return {bootstrap, f"{host}.cluster.local:{port}"}


def _topics(objects: list[Manifest], kafka: Manifest) -> tuple[dict[str, Manifest], list[Finding]]:
    topics: dict[str, Manifest] = {}
    findings = []
    for topic in of_kind(objects, "KafkaTopic"):
        topic_name = str(dig(topic, "spec", "topicName") or name(topic))
        topics[topic_name] = topic
        if labels(topic).get(STRIMZI_CLUSTER_LABEL) != name(kafka):
            findings.append(
                Finding(
                    object_id(topic),
                    "wiring.topics",
                    f"label {STRIMZI_CLUSTER_LABEL} is {labels(topic).get(STRIMZI_CLUSTER_LABEL)!r}"
                    f", expected {name(kafka)!r} (the topic operator would ignore it)",
                )
            )
        if namespace(topic) != namespace(kafka):
            findings.append(
                Finding(
                    object_id(topic),
                    "wiring.topics",
                    f"namespace {namespace(topic)!r} is not the Kafka's {namespace(kafka)!r}",
                )
            )
    return topics, findings


def _services(objects: list[Manifest]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """The patient and maker containers, found by their pod's `app.kubernetes.io/name`."""
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for obj in objects:
        for path in (("spec", "template"), ("spec", "jobTargetRef", "template")):
            template = mapping(dig(obj, *path))
            service = mapping(dig(template, "metadata", "labels")).get(NAME_LABEL)
            containers = sequence(dig(template, "spec", "containers"))
            if service in (PATIENT, MEDICINE) and containers:
                found[str(service)] = (object_id(obj), mapping(containers[0]))
    return found


def _literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """Variables with a literal value (those from the downward API or secrets are cluster-only)."""
    env = {}
    for entry in map(mapping, sequence(container.get("env"))):
        if "value" in entry:
            env[str(entry.get("name"))] = str(entry["value"])
    return env


def _secret_env(container: Mapping[str, Any]) -> dict[str, str]:
    """Variables from a Secret, as stand-ins: their values exist only on the cluster, but the
    settings rules (SASL needs a password) must see that they are set (kafka_users.py checks
    where they come from)."""
    return {
        str(entry.get("name")): "<from a Secret>"
        for entry in map(mapping, sequence(container.get("env")))
        if mapping(dig(entry, "valueFrom", "secretKeyRef"))
    }


def _settings(owner: str, container: Mapping[str, Any], env: Mapping[str, str]) -> list[Finding]:
    classes: list[type[BaseSettings]] = [KafkaSettings]
    classes.append(MedicineSettings if container.get("name") == MEDICINE else PatientSettings)
    findings = []
    for settings_class in classes:
        error = _validate(settings_class, env)
        if error:
            findings.append(
                Finding(owner, "wiring.settings", f"container {container.get('name')}: {error}")
            )
    return findings


def _validate(settings_class: type[BaseSettings], env: Mapping[str, str]) -> str | None:
    """Validate the container's variables of `settings_class`'s prefix, and only those: the
    prefix is swapped for one nobody sets, so this process's own environment cannot leak in."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    values: dict[str, Any] = {
        key.removeprefix(prefix).lower(): value
        for key, value in env.items()
        if key.startswith(prefix)
    }
    try:
        settings_class(_env_prefix=_NOBODY_SETS, _env_file=None, **values)
    except ValidationError as error:
        return "; ".join(
            f"{prefix}{str(detail['loc'][0]).upper() if detail['loc'] else ''}="
            f"{detail['input']!r}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
    return None


def _service_topics(
    owner: str, env: Mapping[str, str], topics: Mapping[str, Manifest]
) -> list[Finding]:
    findings = []
    for variable, field in TOPIC_VARIABLES.items():
        topic = env.get(variable, str(KafkaSettings.model_fields[field].default))
        if topic not in topics:
            findings.append(
                Finding(
                    owner,
                    "wiring.topics",
                    f"{variable} is {topic!r}, which no KafkaTopic creates "
                    f"(topics: {', '.join(sorted(topics))})",
                )
            )
    return findings


def _pods(objects: list[Manifest]) -> list[Finding]:
    findings = []
    for deployment in of_kind(objects, "Deployment"):
        selector = mapping(dig(deployment, "spec", "selector", "matchLabels"))
        pod_labels = mapping(dig(deployment, "spec", "template", "metadata", "labels"))
        if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
            findings.append(
                Finding(
                    object_id(deployment),
                    "wiring.pods",
                    f"selector {dict(selector)} does not match the pod labels {dict(pod_labels)}",
                )
            )
    for job in of_kind(objects, "ScaledJob"):
        policy = dig(job, "spec", "jobTargetRef", "template", "spec", "restartPolicy")
        if policy not in ("Never", "OnFailure"):
            findings.append(
                Finding(
                    object_id(job),
                    "wiring.pods",
                    f"restartPolicy is {policy!r}; a Job's pods need Never (or OnFailure)",
                )
            )
    return findings


def external_listener_findings(
    objects: Iterable[Manifest], kind_config: Mapping[str, Any] | None
) -> list[Finding]:
    """[wiring.external] The listener the harness uses from the host: a NodePort listener with
    fixed ports for the bootstrap and every broker; with a kind config, each of those ports is
    mapped to the same port on the host's 127.0.0.1, which is what the brokers advertise."""
    kafkas = of_kind(objects, "Kafka")
    if len(kafkas) != 1:
        return []  # wiring.kafka reports it
    owner = object_id(kafkas[0])
    listener = kafka_listener(kafkas[0], EXTERNAL_LISTENER)
    if listener.get("type") != "nodeport":
        return [Finding(owner, "wiring.external", f"no nodeport listener {EXTERNAL_LISTENER!r}")]
    brokers = list(map(mapping, sequence(dig(listener, "configuration", "brokers"))))
    ports = node_ports(listener)
    if len(ports) != 1 + len(brokers) or not brokers:
        return [
            Finding(
                owner, "wiring.external", "the bootstrap and every broker need a fixed nodePort"
            )
        ]
    if kind_config is None:
        return []
    findings = []
    mapped = {
        mapping(port).get("containerPort"): mapping(port)
        for node in sequence(kind_config.get("nodes"))
        for port in sequence(mapping(node).get("extraPortMappings"))
    }
    for port in ports:
        mapping_ = mapped.get(port, {})
        if mapping_.get("hostPort") != port or mapping_.get("listenAddress") != "127.0.0.1":
            findings.append(
                Finding(
                    owner,
                    "wiring.external",
                    f"nodePort {port} is not mapped to 127.0.0.1:{port} by the kind config",
                )
            )
    for broker in brokers:
        advertised = f"{broker.get('advertisedHost')}:{broker.get('advertisedPort')}"
        if advertised != f"127.0.0.1:{broker.get('nodePort')}":
            findings.append(
                Finding(
                    owner,
                    "wiring.external",
                    f"broker {broker.get('broker')} advertises {advertised}, but on kind the host "
                    f"reaches it at 127.0.0.1:{broker.get('nodePort')}",
                )
            )
    return findings
