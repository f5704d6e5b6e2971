"""The ScaledJob manifest reader: what the local platform takes from `keda/`, and every refusal.

Each manifest is YAML written here to a temporary file, so a case shows exactly what a user would
have in the repository and the one-sentence error they get.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub.keda.scaledjob import (
    EnvVar,
    ScaledJobError,
    ScaledJobSpec,
    load_scaled_job,
    parse_scaled_job,
)
from pytest_medpubsub.keda.scaler import (
    ScalingSpec,
    ScalingStrategy,
)
from pytest_medpubsub.keda.trigger import (
    KafkaTriggerMetadata,
)

FULL = """\
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: medicine-kafka
spec:
  secretTargetRef:
    - parameter: password
      name: medicine-kafka
      key: password
---
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: medicine
  namespace: medpubsub
spec:
  pollingInterval: 5
  maxReplicaCount: 12
  minReplicaCount: 1
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 7
  scalingStrategy:
    strategy: custom
    customScalingQueueLengthDeduction: 1
    customScalingRunningJobPercentage: "0.5"
    pendingPodConditions: [Ready, PodScheduled]
    multipleScalersCalculation: sum
  jobTargetRef:
    activeDeadlineSeconds: 600
    backoffLimit: 2
    template:
      spec:
        restartPolicy: Never
        containers:
          - name: medicine
            image: medpubsub/medicine:dev
            command: [medpubsub]
            args: [medicine]
            env:
              - name: MEDPUBSUB_KAFKA_BOOTSTRAP
                value: medpubsub-kafka-bootstrap:9092
              - name: MEDICINE_MAX_ORDERS
                value: "1"
              - name: MEDPUBSUB_KAFKA_SASL_PASSWORD
                valueFrom:
                  secretKeyRef: {name: medicine-kafka, key: password}
              - name: EMPTY
  triggers:
    - type: kafka
      authenticationRef:
        name: medicine-kafka
      metadata:
        bootstrapServersFromEnv: MEDPUBSUB_KAFKA_BOOTSTRAP
        consumerGroup: medicine
        topic: tabs.orders
        lagThreshold: "1"
        activationLagThreshold: "0"
        offsetResetPolicy: earliest
        allowIdleConsumers: "false"
        scaleToZeroOnInvalidOffset: "true"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
data: {}
"""


def minimal() -> dict[str, Any]:
    """The smallest ScaledJob the API server accepts, as a mutable document."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "medicine"},
        "spec": {
            "jobTargetRef": {
                "template": {"spec": {"containers": [{"name": "medicine", "image": "m:1"}]}}
            },
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": "kafka:9092",
                        "consumerGroup": "medicine",
                        "topic": "tabs.orders",
                    },
                }
            ],
        },
    }


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scaledjob.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def dump(*documents: object) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def test_full_manifest(tmp_path: Path) -> None:
    job = load_scaled_job(write(tmp_path, FULL))
    assert job == ScaledJobSpec(
        name="medicine",
        scaling=ScalingSpec(
            max_replica_count=12,
            min_replica_count=1,
            polling_interval=5,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=7,
            scaling_strategy=ScalingStrategy(
                strategy="custom",
                custom_scaling_queue_length_deduction=1,
                custom_scaling_running_job_percentage="0.5",
                multiple_scalers_calculation="sum",
                pending_pod_conditions=("Ready", "PodScheduled"),
            ),
        ),
        trigger=KafkaTriggerMetadata(
            bootstrap_servers=("medpubsub-kafka-bootstrap:9092",),  # resolved from the env
            consumer_group="medicine",
            topic="tabs.orders",
            lag_threshold=1,
            offset_reset_policy="earliest",
            scale_to_zero_on_invalid_offset=True,
        ),
        container="medicine",
        image="medpubsub/medicine:dev",
        env=(
            EnvVar("MEDPUBSUB_KAFKA_BOOTSTRAP", "medpubsub-kafka-bootstrap:9092"),
            EnvVar("MEDICINE_MAX_ORDERS", "1"),
            EnvVar("MEDPUBSUB_KAFKA_SASL_PASSWORD", None),
            EnvVar("EMPTY", ""),
        ),
        command=("medpubsub",),
        args=("medicine",),
        active_deadline_seconds=600,
        backoff_limit=2,
    )
    assert job.literal_env == {
        "MEDPUBSUB_KAFKA_BOOTSTRAP": "medpubsub-kafka-bootstrap:9092",
        "MEDICINE_MAX_ORDERS": "1",
        "EMPTY": "",
    }
    assert job.scaling.max_rc == 11


def test_minimal_manifest_takes_keda_defaults(tmp_path: Path) -> None:
    job = load_scaled_job(write(tmp_path, dump(minimal())))
    assert job.scaling == ScalingSpec()
    assert (job.scaling.polling_interval, job.scaling.max_rc, job.scaling.min_rc) == (30, 100, 0)
    assert job.scaling.successful_jobs_history_limit == job.scaling.failed_jobs_history_limit == 100
    assert job.trigger.lag_threshold == 10
    assert (job.env, job.command, job.args) == ((), (), ())
    assert (job.active_deadline_seconds, job.backoff_limit) == (None, None)


def test_env_source_container_name_picks_the_container(tmp_path: Path) -> None:
    doc = minimal()
    doc["spec"]["envSourceContainerName"] = "maker"
    doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"] = [
        {"name": "sidecar", "image": "s:1"},
        {"name": "maker", "image": "m:1", "env": [{"name": "GROUP", "value": "from-env"}]},
    ]
    doc["spec"]["triggers"][0]["metadata"]["consumerGroup"] = ""
    doc["spec"]["triggers"][0]["metadata"]["consumerGroupFromEnv"] = "GROUP"
    job = load_scaled_job(write(tmp_path, dump(doc)))
    assert (job.container, job.trigger.consumer_group) == ("maker", "from-env")


def test_first_container_without_env_source_container_name(tmp_path: Path) -> None:
    doc = minimal()
    doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"].append({"name": "second"})
    assert load_scaled_job(write(tmp_path, dump(doc))).container == "medicine"


def test_name_selects_among_several_scaled_jobs(tmp_path: Path) -> None:
    other = minimal()
    other["metadata"]["name"] = "other"
    other["spec"]["pollingInterval"] = 7
    path = write(tmp_path, dump(minimal(), other))
    assert load_scaled_job(path, name="other").scaling.polling_interval == 7
    assert load_scaled_job(path, name="medicine").scaling.polling_interval == 30


def test_parse_scaled_job_reads_text() -> None:
    assert parse_scaled_job(dump(minimal())).name == "medicine"


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    """A mutation of `minimal()`: set `value` at a dotted path (list indices as numbers)."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


DELETE = object()
CONTAINER = "spec.jobTargetRef.template.spec.containers.0"
METADATA = "spec.triggers.0.metadata"

BROKEN: list[Any] = [
    pytest.param(_set("kind", "Deployment"), "found 0", id="no-scaled-job"),
    pytest.param(_set("apiVersion", "keda.sh/v1beta1"), "found 0", id="other-api-version"),
    pytest.param(_set("metadata.name", DELETE), "metadata.name", id="no-name"),
    pytest.param(_set("spec", ["x"]), "spec must be a mapping", id="spec-not-mapping"),
    pytest.param(_set("spec.jobTargetRef", DELETE), "jobTargetRef", id="no-job-target"),
    pytest.param(
        _set("spec.jobTargetRef.template.spec.containers", []),
        "containers must not be empty",
        id="no-containers",
    ),
    pytest.param(_set(f"{CONTAINER}.name", ""), "containers[].name", id="container-unnamed"),
    pytest.param(
        _set("spec.envSourceContainerName", "ghost"), "names no container", id="env-source"
    ),
    pytest.param(_set(f"{CONTAINER}.env", {"A": "1"}), "env must be a list", id="env-mapping"),
    pytest.param(_set(f"{CONTAINER}.env", [{"value": "1"}]), "env[].name", id="env-unnamed"),
    pytest.param(
        _set(f"{CONTAINER}.env", [{"name": "A", "value": 1}]),
        "env A.value must be a string",
        id="env-value-not-string",
    ),
    pytest.param(_set(f"{CONTAINER}.command", "medpubsub"), "command", id="command-string"),
    pytest.param(_set(f"{CONTAINER}.args", [1]), "args", id="args-not-strings"),
    pytest.param(_set(f"{CONTAINER}.image", 5), "image must be a string", id="image-number"),
    pytest.param(_set("spec.maxReplicaCount", 0), "maxReplicaCount must be at least 1", id="max-0"),
    pytest.param(
        _set("spec.maxReplicaCount", "10"), "maxReplicaCount must be an integer", id="max-string"
    ),
    pytest.param(_set("spec.minReplicaCount", -1), "at least 0", id="min-negative"),
    pytest.param(_set("spec.pollingInterval", 0), "pollingInterval", id="polling-0"),
    pytest.param(_set("spec.pollingInterval", True), "integer", id="polling-bool"),
    pytest.param(_set("spec.pollingInterval", 2.5), "integer", id="polling-float"),
    pytest.param(
        _set("spec.successfulJobsHistoryLimit", -1), "successfulJobsHistoryLimit", id="history"
    ),
    pytest.param(_set("spec.failedJobsHistoryLimit", -2), "failedJobsHistoryLimit", id="failed"),
    pytest.param(_set("spec.scalingStrategy", "eager"), "mapping", id="strategy-not-mapping"),
    pytest.param(_set("spec.scalingStrategy", {"strategy": "fast"}), "fast", id="strategy-name"),
    pytest.param(
        _set("spec.scalingStrategy", {"multipleScalersCalculation": "median"}),
        "median",
        id="calculation-name",
    ),
    pytest.param(
        _set("spec.scalingStrategy", {"customScalingRunningJobPercentage": 0.5}),
        "must be a string",
        id="percentage-unquoted",
    ),
    pytest.param(
        _set("spec.scalingStrategy", {"customScalingRunningJobPercentage": "Inf"}),
        "finite",
        id="percentage-infinite",
    ),
    pytest.param(
        _set("spec.scalingStrategy", {"customScalingQueueLengthDeduction": "1"}),
        "integer",
        id="deduction-string",
    ),
    pytest.param(
        _set("spec.scalingStrategy", {"pendingPodConditions": "Ready"}),
        "pendingPodConditions",
        id="pending-conditions-string",
    ),
    pytest.param(_set("spec.triggers", DELETE), "found 0 triggers", id="no-triggers"),
    pytest.param(
        _set("spec.triggers", [{"type": "kafka"}, {"type": "kafka"}]),
        "found 2 triggers",
        id="two-triggers",
    ),
    pytest.param(_set("spec.triggers.0.type", "apache-kafka"), "must be kafka", id="other-type"),
    pytest.param(_set(METADATA, DELETE), "metadata must be a mapping", id="no-metadata"),
    pytest.param(_set(f"{METADATA}.lagThreshold", 5), "quoted string", id="metadata-unquoted"),
    pytest.param(_set(f"{METADATA}.lagThreshold", "0"), "positive", id="metadata-threshold"),
    pytest.param(_set(f"{METADATA}.consumerGroup", DELETE), "consumerGroup", id="no-group"),
    pytest.param(_set(f"{METADATA}.bootstrapServers", DELETE), "bootstrapServers", id="no-servers"),
    pytest.param(
        _set("spec.jobTargetRef.backoffLimit", -1), "backoffLimit must be at least 0", id="backoff"
    ),
    pytest.param(
        _set("spec.jobTargetRef.activeDeadlineSeconds", 0),
        "activeDeadlineSeconds must be at least 1",
        id="deadline",
    ),
]


@pytest.mark.parametrize(("mutate", "fragment"), BROKEN)
def test_broken_manifest(tmp_path: Path, mutate: Mutation, fragment: str) -> None:
    doc = minimal()
    mutate(doc)
    path = write(tmp_path, dump(doc))
    with pytest.raises(ScaledJobError) as caught:
        load_scaled_job(path)
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(str(path))
    assert "\n" not in message
    assert message.endswith(".")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("spec: [unclosed\n", "not valid YAML at line 2", id="not-yaml"),
        pytest.param("", "found 0", id="empty-file"),
        pytest.param(
            dump(minimal(), minimal()),
            "expected exactly one keda.sh/v1alpha1 ScaledJob, found 2",
            id="two-scaled-jobs",
        ),
    ],
)
def test_broken_file(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ScaledJobError, match=fragment):
        load_scaled_job(write(tmp_path, text))


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ScaledJobError, match="ScaledJob named 'ghost', found 0"):
        load_scaled_job(write(tmp_path, dump(minimal())), name="ghost")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScaledJobError, match="cannot read the ScaledJob manifest"):
        load_scaled_job(tmp_path / "absent.yaml")


def test_from_env_pointing_at_a_value_from_is_missing(tmp_path: Path) -> None:
    """A `...FromEnv` naming a secret-backed variable cannot be resolved off-cluster."""
    literal = "value: medpubsub-kafka-bootstrap:9092"
    assert literal in FULL
    text = FULL.replace(literal, "valueFrom: {secretKeyRef: {name: kafka, key: bootstrap}}")
    with pytest.raises(ScaledJobError, match="misses the required bootstrapServers"):
        load_scaled_job(write(tmp_path, text))
