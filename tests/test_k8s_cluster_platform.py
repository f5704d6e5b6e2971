"""What of the cluster platforms can be proved without a cluster: prerequisites fail fast in one
sentence, the run's values land in the manifests, the operator manifests are prepared as
documented, the status readings count what KEDA counts, and `group_lag` reads a real broker."""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from medpubsub.settings import KafkaSettings
from pytest_medpubsub.k8s.objects import Manifest, kafka_listener
from pytest_medpubsub.kafka.offsets import move_group_to_end
from pytest_medpubsub.platforms import diagnostics, operators
from pytest_medpubsub.platforms.base import Platform, PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.cluster import check_prerequisites, create_cluster_platform
from pytest_medpubsub.platforms.cluster_backends import KINDS, ClusterOptions
from pytest_medpubsub.platforms.images import service_images
from pytest_medpubsub.platforms.kafka_lag import group_lag
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.manifests import external_bootstrap, for_cluster
from pytest_medpubsub.platforms.status import (
    deployment_state,
    pods_summary,
    ready_state,
    running_pods,
    unfinished,
)
from tests.conftest import PROJECT


def options(tmp_path: Path, registry: str | None = None) -> ClusterOptions:
    return ClusterOptions(
        project_dir=PROJECT,
        report_dir=tmp_path / "report",
        keep=False,
        image_registry=registry,
        strimzi_manifest=None,
        keda_manifest=None,
    )


# --------------------------------------------------------------------------- prerequisites


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No docker, kind, minikube or kubectl on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))


def assert_one_sentence(error: PlatformUnavailable) -> str:
    message = str(error)
    assert "\n" not in message
    assert message.endswith(".")
    assert message.count(". ") == 0, message
    return message


@pytest.mark.parametrize("kind", ["kind", "minikube"])
def test_without_docker_a_local_cluster_is_refused_in_one_sentence(
    kind: str, tmp_path: Path, empty_path: None
) -> None:
    started = time.monotonic()
    with pytest.raises(PlatformUnavailable) as raised:
        check_prerequisites(kind, options(tmp_path))
    assert time.monotonic() - started < 5
    assert "docker" in assert_one_sentence(raised.value).lower()


@pytest.mark.skipif(
    os.system("docker info >/dev/null 2>&1") == 0, reason="a Docker engine runs here"
)
def test_a_docker_client_without_an_engine_is_not_enough(tmp_path: Path) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        check_prerequisites("kind", options(tmp_path))
    assert "engine is not running" in assert_one_sentence(raised.value)


def test_an_existing_cluster_needs_a_context(tmp_path: Path, empty_path: None) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        check_prerequisites("existing", options(tmp_path, registry="registry.invalid:5000"))
    assert "kubectl" in assert_one_sentence(raised.value)


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        create_cluster_platform("docker-desktop", options(tmp_path))
    assert all(kind in assert_one_sentence(raised.value) for kind in KINDS)


def test_creating_a_platform_does_nothing_until_started(tmp_path: Path) -> None:
    platform = create_cluster_platform("kind", options(tmp_path))
    assert isinstance(platform, Platform)
    assert platform.name == "kind"
    with pytest.raises(PlatformError, match="not started"):
        platform.bootstrap_servers  # noqa: B018 - the property is what is tested
    platform.stop()  # nothing to stop: no error
    assert not (tmp_path / "report").exists()


# --------------------------------------------------------------------------- the run's manifests


@pytest.fixture(scope="module")
def existing_render(renders: dict[str, list[Manifest]]) -> list[Manifest]:
    """A private copy of the existing render."""
    return copy.deepcopy(renders["existing"])


def test_the_run_sets_host_images_and_patients(existing_render: list[Manifest]) -> None:
    images = service_images(existing_render)
    assert images == {"patient": "medpubsub/patient:0.1.0", "medicine": "medpubsub/medicine:0.1.0"}
    pushed = {image: f"registry.invalid:5000/{image}" for image in images.values()}
    prepared = for_cluster(existing_render, advertised_host="192.0.2.7", images=pushed, patients=0)
    kafka = next(o for o in prepared if o["kind"] == "Kafka")
    brokers = kafka_listener(kafka, "external")["configuration"]["brokers"]
    assert [b["advertisedHost"] for b in brokers] == ["192.0.2.7"]
    assert external_bootstrap(prepared, "192.0.2.7") == "192.0.2.7:32100"
    assert set(service_images(prepared).values()) == set()  # no bare medpubsub/ image is left
    deployment = next(o for o in prepared if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 0
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.invalid:5000/medpubsub/patient:0.1.0"
    )
    original = next(o for o in existing_render if o["kind"] == "Deployment")
    assert original["spec"]["replicas"] == 1, "the render itself is not modified"


# --------------------------------------------------------------------------- operator manifests


def test_strimzi_is_installed_into_the_medpubsub_namespace(tmp_path: Path) -> None:
    bundle = tmp_path / "strimzi.yaml"
    bundle.write_text(
        "kind: RoleBinding\nsubjects:\n  - kind: ServiceAccount\n    namespace: myproject\n"
        "---\nkind: Deployment\nmetadata:\n  name: strimzi-cluster-operator\n"
    )
    text = operators.release_manifest(operators.STRIMZI, str(bundle))
    assert "namespace: medpubsub" in text
    assert "myproject" not in text


def test_a_manifest_that_is_not_a_release_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "keda.yaml"
    page.write_text("<html>not found</html>")
    with pytest.raises(PlatformError, match="no Deployment"):
        operators.release_manifest(operators.KEDA, str(page))
    with pytest.raises(PlatformError, match="is not a file"):
        operators.release_manifest(operators.KEDA, str(tmp_path / "missing.yaml"))


def test_the_release_manifests_are_pinned() -> None:
    assert "/1.2.0/strimzi-cluster-operator-1.2.0.yaml" in operators.STRIMZI.url
    assert "/v2.20.2/keda-2.20.2.yaml" in operators.KEDA.url


# --------------------------------------------------------------------------- status readings


def job(*conditions: tuple[str, str]) -> dict[str, object]:
    return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}


def test_unfinished_jobs_are_counted_as_keda_counts_them() -> None:
    jobs = [
        job(),  # pending: no pod yet
        job(("Complete", "True")),
        job(("Failed", "True")),
        job(("Failed", "False"), ("Suspended", "True")),
    ]
    assert unfinished(jobs) == 2


def test_only_running_makers_are_killed_oldest_first() -> None:
    pods = [
        {
            "metadata": {"name": "b"},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:02"},
        },
        {
            "metadata": {"name": "a"},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:01"},
        },
        {"metadata": {"name": "p"}, "status": {"phase": "Pending"}},
        {
            "metadata": {"name": "d", "deletionTimestamp": "2026-01-01T00:03"},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00"},
        },
    ]
    assert running_pods(pods) == ["a", "b"]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        # Strimzi reports a failure only as NotReady=True, with its reason: a wait must show it.
        (
            [{"type": "NotReady", "status": "True", "reason": "InvalidResourceException",
              "message": "Kafka version 9.9.9 is not supported"}],
            "NotReady=True InvalidResourceException: Kafka version 9.9.9 is not supported",
        ),
        ([{"type": "NotReady", "status": "False"}], "no Ready condition yet"),
        ([{"type": "Warning", "status": "True"}, {"type": "Ready", "status": "True"}], "Ready"),
        (
            [{"type": "NotReady", "status": "True", "reason": "Creating"},
             {"type": "Ready", "status": "True"}],
            "Ready",
        ),
    ],
)  # fmt: skip
def test_strimzi_s_not_ready_reason_is_the_state(
    conditions: list[dict[str, str]], expected: str
) -> None:
    assert ready_state({"status": {"conditions": conditions}}) == expected


def test_states_say_what_is_missing() -> None:
    kafka = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Timeout",
                                        "message": "pods not ready"}]}}  # fmt: skip
    assert ready_state(kafka) == "Ready=False Timeout: pods not ready"
    assert ready_state({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}) == "Ready"
    assert ready_state({}) == "no Ready condition yet"
    deployment = {"spec": {"replicas": 2}, "status": {"availableReplicas": 1, "conditions": [
        {"message": "ReplicaSet is progressing"}]}}  # fmt: skip
    assert deployment_state(deployment) == "1/2 available (ReplicaSet is progressing)"
    pods = [{"metadata": {"name": "k-0"}, "status": {"phase": "Pending", "containerStatuses": [
        {"state": {"waiting": {"reason": "ErrImagePull"}}}]}}]  # fmt: skip
    assert pods_summary(pods) == "k-0 Pending (ErrImagePull)"


# --------------------------------------------------------------------------- lag on a real broker


def _place_three_orders(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for _ in range(3):
        producer.produce(topic, b"{}", partition=0)
    assert producer.flush(10) == 0


def _commit_behind_the_end(bootstrap: str, group: str, topic: str, *, behind: int) -> int:
    """Commit partition 0 of `topic` for `group` `behind` records short of its end; the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        watermark: int = consumer.get_watermark_offsets(TopicPartition(topic, 0))[1]
        consumer.commit(offsets=[TopicPartition(topic, 0, watermark - behind)], asynchronous=False)
    finally:
        consumer.close()
    return watermark


def test_group_lag_counts_an_uncommitted_backlog_then_what_is_left(medpubsub_kafka: str) -> None:
    kafka = KafkaSettings(kafka_bootstrap=medpubsub_kafka)
    group = f"lag-test-{time.monotonic_ns()}"
    before = group_lag(kafka, group, kafka.orders_topic)
    _place_three_orders(medpubsub_kafka, kafka.orders_topic)
    assert group_lag(kafka, group, kafka.orders_topic) == before + 3

    end = before + 3
    watermark = _commit_behind_the_end(medpubsub_kafka, group, kafka.orders_topic, behind=1)
    assert group_lag(kafka, group, kafka.orders_topic) == end - watermark + 1


def test_a_group_moved_to_the_log_end_skips_what_it_had_not_read(medpubsub_kafka: str) -> None:
    """What the benchmark does before each row: the orders of earlier rows are not its backlog."""
    kafka = KafkaSettings(kafka_bootstrap=medpubsub_kafka)
    group = f"moved-{time.monotonic_ns()}"
    _place_three_orders(medpubsub_kafka, kafka.orders_topic)
    _commit_behind_the_end(medpubsub_kafka, group, kafka.orders_topic, behind=2)
    behind = group_lag(kafka, group, kafka.orders_topic)
    assert behind >= 2  # the two records past its commit, and every other partition's

    assert move_group_to_end(kafka, group, kafka.orders_topic) == behind
    assert group_lag(kafka, group, kafka.orders_topic) == 0
    assert move_group_to_end(kafka, group, kafka.orders_topic) == 0


# --------------------------------------------------------------------------- diagnostics


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_diagnostics_of_a_cluster_that_does_not_answer_say_so_quickly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "nobody", "user": {}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "nobody"}}],
                "current-context": "gone",
            }
        )
    )
    started = time.monotonic()
    diagnostics.dump(Kubectl(kubeconfig=kubeconfig), tmp_path / "diagnostics")
    assert time.monotonic() - started < 25
    assert [p.name for p in (tmp_path / "diagnostics").iterdir()] == ["pods.txt"]
    assert "could not be read" in (tmp_path / "diagnostics/pods.txt").read_text()


def test_the_dump_reads_the_logs_of_every_operator_deployment_the_harness_waits_for() -> None:
    """A renamed Deployment (KEDA's release names differ from its Helm chart's) would leave the
    failure dump without the log that explains the failure."""
    for operator in (operators.KEDA, operators.STRIMZI):
        for name in operator.deployments:
            assert diagnostics.OPERATOR_LOGS.get(name) == operator.namespace, name
