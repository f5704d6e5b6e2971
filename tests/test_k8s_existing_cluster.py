"""What of an existing cluster without a registry, a Kafka of one's own and a minimal KEDA can be
proved without a cluster: the options' errors are one sentence, images really land in a real
containerd (one started here), the broker's address lands in the bootstrap Service's
EndpointSlice, topics are created on a real broker reachable at the host's address, and a KEDA
manifest is judged by the Deployments it contains."""

from __future__ import annotations

import copy
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes
from pytest_medpubsub.k8s.check import check_objects, harness_topics
from pytest_medpubsub.k8s.objects import Manifest, load_documents
from pytest_medpubsub.k8s.render import RenderError, render
from pytest_medpubsub.kafka.addresses import host_address
from pytest_medpubsub.kafka.broker import system_topics
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.platforms import containerd, external_kafka, operators
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.cluster import check_prerequisites
from pytest_medpubsub.platforms.cluster_backends import ClusterOptions
from pytest_medpubsub.platforms.commands import probe
from pytest_medpubsub.platforms.existing import ExistingBackend
from pytest_medpubsub.platforms.manifests import KafkaEndpoint, for_cluster
from pytest_medpubsub.waiting import wait_for
from tests.conftest import PROJECT

MINIMAL_KEDA = """\
apiVersion: v1
kind: Namespace
metadata:
  name: keda
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: keda-operator
  namespace: keda
spec:
  template:
    spec:
      containers:
        - name: keda-operator
          image: {image}
          imagePullPolicy: Never
"""


def one_sentence(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    assert message.endswith(".")
    assert message.count(". ") == 0, message
    return message


def options(tmp_path: Path, **given: str) -> ClusterOptions:
    return ClusterOptions(
        project_dir=PROJECT,
        report_dir=tmp_path / "report",
        keep=False,
        image_registry=given.pop("image_registry", None),
        strimzi_manifest=None,
        keda_manifest=given.pop("keda_manifest", None),
        **given,
    )


# --------------------------------------------------------------------------- the options


@pytest.mark.parametrize(
    "given",
    [{}, {"image_registry": "registry.invalid:5000", "containerd": "/run/nothing.sock"}],
    ids=["neither", "both"],
)
def test_an_existing_cluster_needs_exactly_one_way_to_get_the_images(
    tmp_path: Path, given: dict[str, str]
) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        check_prerequisites("existing", options(tmp_path, **given))
    message = one_sentence(raised.value)
    assert "--medpubsub-image-registry" in message
    assert "--medpubsub-containerd" in message
    assert "exactly one" in message


def test_a_containerd_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    if shutil.which("ctr") is None:
        pytest.skip("ctr is not installed")
    backend = ExistingBackend(None, tmp_path, containerd_socket=str(tmp_path / "none.sock"))
    with pytest.raises(PlatformUnavailable) as raised:
        containerd.require_containerd(str(backend.containerd_socket))
    assert "is not a socket" in one_sentence(raised.value)


def test_only_an_existing_cluster_takes_a_containerd(tmp_path: Path) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        check_prerequisites("kind", options(tmp_path, containerd=str(tmp_path / "c.sock")))
    assert "--medpubsub-cluster=existing" in one_sentence(raised.value)


def test_the_overlay_follows_the_way_images_arrive_and_where_kafka_is(tmp_path: Path) -> None:
    pushed = ExistingBackend("registry.invalid:5000", tmp_path)
    imported = ExistingBackend(None, tmp_path, containerd_socket="/run/c.sock")
    assert (pushed.overlay, pushed.external_kafka_overlay) == ("existing", "external-kafka")
    assert (imported.overlay, imported.external_kafka_overlay) == (
        "existing-preloaded",
        "external-kafka-preloaded",
    )


@pytest.mark.parametrize(
    ("bootstrap", "complaint"),
    [
        ("127.0.0.1:9092", "loopback"),
        ("localhost:9092", "loopback"),
        ("[::1]:9092", "loopback"),
        ("198.51.100.7:9092,198.51.100.8:9092", "not one HOST:PORT"),
        ("198.51.100.7", "not one HOST:PORT"),
        ("kafka.invalid:9092", "does not resolve"),
    ],
)
def test_a_kafka_the_pods_cannot_reach_is_refused_in_one_sentence(
    bootstrap: str, complaint: str
) -> None:
    with pytest.raises(PlatformUnavailable) as raised:
        external_kafka.parse(bootstrap)
    assert complaint in one_sentence(raised.value)


def test_a_kafka_address_is_kept_with_its_port() -> None:
    assert external_kafka.parse("198.51.100.7:39092").endpoint == KafkaEndpoint(
        "198.51.100.7", 39092
    )
    ipv6 = external_kafka.parse("[2001:db8::7]:9092")
    assert ipv6.endpoint == KafkaEndpoint("2001:db8::7", 9092)
    assert ipv6.endpoint.address_type == "IPv6"
    assert ipv6.kafka.kafka_bootstrap == "[2001:db8::7]:9092"


# --------------------------------------------------------------------------- the run's manifests


@pytest.fixture(scope="module")
def external_render(renders: dict[str, list[Manifest]]) -> list[Manifest]:
    """A private copy of the external-kafka-preloaded render."""
    return copy.deepcopy(renders["external-kafka-preloaded"])


def test_the_broker_address_lands_in_the_endpoint_slice(external_render: list[Manifest]) -> None:
    original = copy.deepcopy(external_render)
    prepared = for_cluster(
        external_render,
        advertised_host=None,
        images={},
        external_kafka=KafkaEndpoint("198.51.100.7", 39092),
    )
    (endpoint_slice,) = [o for o in prepared if o["kind"] == "EndpointSlice"]
    assert endpoint_slice["endpoints"][0]["addresses"] == ["198.51.100.7"]
    assert endpoint_slice["ports"][0]["port"] == 39092
    service = next(o for o in prepared if o["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 9092, "what every client dials stays"
    assert check_objects(prepared, None, harness_topics(PROJECT)) == []
    assert external_render == original, "the render itself is not modified"

    ipv6 = for_cluster(external_render, advertised_host=None, images={},
                       external_kafka=KafkaEndpoint("2001:db8::7", 9092))  # fmt: skip
    (endpoint_slice,) = [o for o in ipv6 if o["kind"] == "EndpointSlice"]
    assert endpoint_slice["addressType"] == "IPv6"
    assert check_objects(ipv6, None, harness_topics(PROJECT)) == []


def test_a_render_with_strimzi_cannot_take_an_external_broker() -> None:
    try:
        objects = load_documents(render(PROJECT / "k8s/overlays/kind"))
    except RenderError as error:
        pytest.skip(str(error))
    with pytest.raises(PlatformError, match="no EndpointSlice"):
        for_cluster(objects, advertised_host=None, images={},
                    external_kafka=KafkaEndpoint("198.51.100.7", 9092))  # fmt: skip


# --------------------------------------------------------------------------- a real broker


@pytest.fixture(scope="module")
def broker_on_the_host_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded broker bound to and advertising this machine's own address, as pods need."""
    address = host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    broker = EmbeddedKafka(tmp_path_factory.mktemp("kafka"), host=address)
    try:
        yield broker.start()
    finally:
        broker.stop()


def test_the_topics_are_created_on_the_external_broker(broker_on_the_host_address: str) -> None:
    external = external_kafka.parse(broker_on_the_host_address)
    specs = system_topics()
    external_kafka.prepare(external, specs)
    external_kafka.prepare(external, specs)  # a second run finds them and is fine
    kafka = KafkaSettings(kafka_bootstrap=broker_on_the_host_address)
    topics = AdminClient(common_config(kafka, "t")).list_topics(timeout=10).topics
    for spec in specs:
        assert len(topics[spec.name].partitions) == spec.partitions


def test_a_broker_advertising_loopback_is_refused(medpubsub_kafka: str) -> None:
    """The session broker advertises 127.0.0.1: a pod would be told to dial itself."""
    if not medpubsub_kafka.startswith("127.0.0.1:"):
        pytest.skip("the session broker is not on loopback")
    port = int(medpubsub_kafka.rpartition(":")[2])
    loopback = external_kafka.ExternalKafka(medpubsub_kafka, KafkaEndpoint("127.0.0.1", port))
    with pytest.raises(PlatformError, match=r"advertises 127\.0\.0\.1:.*loopback"):
        external_kafka.prepare(loopback, system_topics())


# --------------------------------------------------------------------------- a real containerd


@pytest.fixture(scope="module")
def containerd_socket() -> Iterator[str]:
    """A containerd of our own (no CRI plugin, its own root, state and socket), stopped after."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd and ctr are not installed")
    directory = Path(tempfile.mkdtemp(prefix="medpubsub-ctrd-"))  # short: a socket path < 108
    config = directory / "config.toml"
    config.write_text('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    socket = directory / "containerd.sock"
    process = processes.spawn(
        ["containerd", "--config", str(config), "--root", str(directory / "root"),
         "--state", str(directory / "state"), "--address", str(socket)],
        log_path=directory / "containerd.log",
    )  # fmt: skip

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError((directory / "containerd.log").read_text()[-2000:])
        outcome = probe(containerd.ctr(str(socket), "version"), timeout_s=5)
        return outcome is not None and outcome.ok

    try:
        wait_for(answers, 30, "our containerd to answer")
        yield str(socket)
    finally:
        processes.stop(process, grace_s=10)
        subprocess.run(["umount", "-R", str(directory)], capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_image() -> Iterator[str]:
    """A tiny image in Docker (an empty filesystem), removed after."""
    outcome = probe(["docker", "info", "--format", "{{.ServerVersion}}"], timeout_s=15)
    if outcome is None or not outcome.ok:
        pytest.skip("no Docker engine runs here")
    image = "medpubsub-test/empty:1"
    subprocess.run(["docker", "import", "-", image], input=_empty_tar(), check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    try:
        yield image
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def _empty_tar() -> bytes:
    return subprocess.run(
        ["tar", "-cf", "-", "--files-from", "/dev/null"], capture_output=True, check=True
    ).stdout


def test_an_image_is_streamed_into_the_nodes_containerd(
    docker_image: str, containerd_socket: str, tmp_path: Path
) -> None:
    assert not containerd.has_image(containerd_socket, docker_image)
    containerd.import_image(docker_image, containerd_socket, tmp_path)
    assert containerd.has_image(containerd_socket, docker_image)
    assert "docker.io/medpubsub-test/empty:1" in containerd.images(containerd_socket)


def test_an_image_docker_does_not_have_fails_with_dockers_words(
    containerd_socket: str, tmp_path: Path
) -> None:
    if probe(["docker", "info"], timeout_s=15) is None:
        pytest.skip("no Docker engine runs here")
    with pytest.raises(PlatformError, match="docker save medpubsub-test/absent:1"):
        containerd.import_image("medpubsub-test/absent:1", containerd_socket, tmp_path)


def test_image_names_are_the_ones_containerd_stores() -> None:
    assert containerd.normalized("medpubsub/patient:0.1.0") == "docker.io/medpubsub/patient:0.1.0"
    assert containerd.normalized("busybox") == "docker.io/library/busybox:latest"
    assert containerd.normalized("localhost/keda:2") == "localhost/keda:2"
    assert containerd.normalized("registry.invalid:5000/a/b:1") == "registry.invalid:5000/a/b:1"


# --------------------------------------------------------------------------- a minimal KEDA


def test_a_minimal_keda_is_awaited_by_the_deployments_it_contains() -> None:
    text = MINIMAL_KEDA.format(image="medpubsub/keda-operator:2.20.2")
    keda = operators.as_given(operators.KEDA, text)
    assert keda.deployments == ("keda-operator",)
    assert keda.namespace == "keda"
    assert operators.local_images(text) == ["medpubsub/keda-operator:2.20.2"]
    assert len(operators.KEDA.deployments) == 3, "the release still has three"


def test_a_local_keda_image_missing_from_containerd_is_one_sentence(
    containerd_socket: str, docker_image: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "keda-minimal.yaml"
    text = MINIMAL_KEDA.format(image="medpubsub-test/keda-operator:absent")
    manifest.write_text(text)
    keda = operators.as_given(operators.KEDA, text)
    with pytest.raises(PlatformUnavailable) as raised:
        operators.require_local_images(keda, text, str(manifest), containerd_socket)
    message = one_sentence(raised.value)
    assert "medpubsub-test/keda-operator:absent" in message
    assert containerd_socket in message

    present = MINIMAL_KEDA.format(image=docker_image)
    containerd.import_image(docker_image, containerd_socket, tmp_path)
    operators.require_local_images(keda, present, str(manifest), containerd_socket)
