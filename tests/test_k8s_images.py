"""The service images as built here (`make images`), run once each against the session's real
broker the way a pod runs them: read-only root file system, uid 10001, every capability dropped,
no privilege escalation. A patient's orders are all made by a maker, each tab exactly once.

Skipped, with the reason, where no Docker engine runs or the images are not built: building
them takes a minute and is `make images`' job, not the suite's."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from medpubsub.kafka_clients import reader_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.k8s.dockerfiles import SERVICES, dockerfile_path, parse, target_instructions
from pytest_medpubsub.kafka.topics import TopicSpec, ensure_topics
from pytest_medpubsub.platforms import images
from pytest_medpubsub.platforms.commands import probe
from pytest_medpubsub.platforms.images import official_base
from pytest_medpubsub.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[1]
PATIENT = "medpubsub/patient:0.1.0"
MEDICINE = "medpubsub/medicine:0.1.0"
# As the pods run them (k8s/base/patient-deployment.yaml, keda/medicine-scaledjob.yaml).
AS_A_POD = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]  # fmt: skip


@pytest.fixture(scope="module")
def built_images() -> None:
    engine = probe(["docker", "info", "--format", "{{.ServerVersion}}"], timeout_s=15)
    if engine is None or not engine.ok:
        pytest.skip("no Docker engine runs here")
    for image in (PATIENT, MEDICINE):
        inspected = probe(["docker", "image", "inspect", image], timeout_s=15)
        if inspected is None or not inspected.ok:
            pytest.skip(f"{image} is not built; run `make images`")


@pytest.fixture
def topics(medpubsub_kafka: str) -> dict[str, str]:
    """Topics and a group of this test's own, so that the system's group never sees its orders."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "MEDPUBSUB_ORDERS_TOPIC": f"images.orders.{suffix}",
        "MEDPUBSUB_DELIVERIES_TOPIC": f"images.deliveries.{suffix}",
        "MEDPUBSUB_DLQ_TOPIC": f"images.dlq.{suffix}",
    }
    kafka = KafkaSettings(kafka_bootstrap=medpubsub_kafka)
    ensure_topics(kafka, [TopicSpec(name, 3) for name in names.values()])
    return names | {"MEDICINE_GROUP_ID": f"images-{suffix}"}


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names of the containers a test starts; removed whatever happens."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def docker_run(name: str, image: str, environment: dict[str, str], *, detach: bool) -> list[str]:
    variables = [f"--env={key}={value}" for key, value in environment.items()]
    return ["docker", "run", "--name", name, *(["--detach"] if detach else []), *AS_A_POD,
            *variables, image]  # fmt: skip


def read(bootstrap: str, topic: str) -> list[dict[str, object]]:
    """Every committed record of `topic` up to its end offsets as of now (read_committed, as the
    observer reads); bounded even while a producer keeps writing."""
    consumer = Consumer(reader_config(KafkaSettings(kafka_bootstrap=bootstrap), "test-images"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in wanted}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        documents: list[dict[str, object]] = []

        def behind() -> list[int]:
            for _ in range(1000):  # a bounded batch: the producer may be writing right now
                message = consumer.poll(0.2)
                if message is None:
                    break
                if message.error() is None and message.value() is not None:
                    documents.append(json.loads(message.value() or b"{}"))
            return [
                p.partition for p in consumer.position(wanted) if 0 < ends[p.partition] > p.offset
            ]

        wait_until(behind, lambda late: not late, 30, f"the end offsets {ends} of {topic}")
        return documents
    finally:
        consumer.close()


def test_the_images_build_on_a_named_base() -> None:
    assert official_base(PROJECT) == "python:3.11.13-slim-bookworm"


def test_each_image_the_manifests_run_is_a_stage_of_the_one_dockerfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line `make images` and the cluster platforms run, without Docker: every
    image the manifests name is built as its service's stage, and that stage exists."""
    commands: list[list[str]] = []

    def record(command: list[str], **_: object) -> str:
        commands.append(command)
        return ""

    monkeypatch.setattr(images, "run", record)
    named = images.manifest_images(PROJECT)
    assert sorted(named) == sorted(SERVICES)
    instructions = parse(dockerfile_path(PROJECT).read_text())
    for service, image in sorted(named.items()):
        images.build(PROJECT, service, image, tmp_path, base="medpubsub/base:bookworm-1")
        assert target_instructions(instructions, service)
    assert commands == [
        ["docker", "build", "--file", str(PROJECT / "system/Dockerfile"), "--target", service,
         "--build-arg", "BASE_IMAGE=medpubsub/base:bookworm-1", "--tag", image, str(PROJECT)]
        for service, image in sorted(named.items())
    ]  # fmt: skip


def test_both_images_run_as_a_pod_runs_them_and_make_every_tab_once(
    built_images: None, medpubsub_kafka: str, topics: dict[str, str], containers: list[str]
) -> None:
    environment = {"MEDPUBSUB_KAFKA_BOOTSTRAP": medpubsub_kafka, **topics}
    patient = f"medpubsub-test-patient-{os.getpid()}"
    containers.append(patient)
    subprocess.run(
        docker_run(patient, PATIENT, environment | {"ORBITAL_PATIENT_ID": "image-test",
                                                   "ORBITAL_ORDER_PERIOD_SECONDS": "0.5"},
                   detach=True),
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    orders_topic = topics["MEDPUBSUB_ORDERS_TOPIC"]
    wait_until(lambda: read(medpubsub_kafka, orders_topic), lambda o: len(o) >= 4, 60,
               "4 orders from the patient image")  # fmt: skip
    stopped = subprocess.run(["docker", "stop", "--time", "10", patient],
                             capture_output=True, timeout=60, check=False)  # fmt: skip
    assert stopped.returncode == 0
    inspect = ["docker", "inspect", "--format", "{{.State.ExitCode}}", patient]
    assert subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip() == "0"
    orders = read(medpubsub_kafka, orders_topic)

    maker = f"medpubsub-test-medicine-{os.getpid()}"
    containers.append(maker)
    made = subprocess.run(
        docker_run(maker, MEDICINE, environment | {"MEDICINE_MAX_ORDERS": "0",
                                                   "MEDICINE_IDLE_TIMEOUT_SECONDS": "5"},
                   detach=False),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    tabs = read(medpubsub_kafka, topics["MEDPUBSUB_DELIVERIES_TOPIC"])
    expected = {f"{o['order_id']}:{i}" for o in orders for i in range(int(str(o["tabs_count"])))}
    made_ids = [str(tab["tab_id"]) for tab in tabs]
    assert sorted(made_ids) == sorted(expected), "every tab of every order, each exactly once"
    assert {str(tab["maker"]) for tab in tabs} != {""}
