"""A Kafka of the user's own on a cluster platform (`--medpubsub-kafka=HOST:PORT`): no Strimzi.

The cluster reaches the broker through the selectorless Service of
`k8s/components/external-kafka`, whose EndpointSlice gets the broker's address here. An
EndpointSlice needs an IP, so a host name is resolved once, on this machine, at start. An
ExternalName Service would keep the name, but it is a DNS alias only: it cannot map the port
every client dials (9092, in the ScaledJob and the patients) to a broker on another port, and the
embedded broker picks a free one. The harness itself (observer, lag) dials HOST:PORT directly.

Loopback is refused: inside a pod it is the pod itself, and the broker must also advertise an
address the pods reach (after bootstrap, clients dial what the broker advertises).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import progress
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.topics import TopicSpec, ensure_topics
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.manifests import KafkaEndpoint
from pytest_medpubsub.platforms.waits import wait_step

ANSWER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ExternalKafka:
    """The broker as given (`bootstrap`, what the harness dials) and as the cluster reaches it
    (`endpoint`: an IP for the EndpointSlice, and the port)."""

    bootstrap: str
    endpoint: KafkaEndpoint

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(kafka_bootstrap=self.bootstrap)


def parse(bootstrap: str) -> ExternalKafka:
    """`HOST:PORT` (IPv6 in brackets) checked and resolved, or one sentence saying what is wrong."""
    text = bootstrap.strip()
    host, separator, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if "," in text or not separator or not host or not port_text.isdigit():
        raise PlatformUnavailable(
            f"--medpubsub-kafka={bootstrap} is not one HOST:PORT; a cluster platform points its "
            "bootstrap Service at exactly one broker address."
        )
    port = int(port_text)
    address = _resolve(host, bootstrap)
    if ipaddress.ip_address(address).is_loopback:
        raise PlatformUnavailable(
            f"--medpubsub-kafka={bootstrap} is a loopback address, which inside a pod is the pod "
            "itself; run the broker on an address the cluster reaches (`medpubsub kafka --host "
            "ADDR`) and give that address."
        )
    return ExternalKafka(bootstrap=text, endpoint=KafkaEndpoint(address, port))


def _resolve(host: str, bootstrap: str) -> str:
    """`host` itself when it is an IP, else its first address (IPv4 preferred)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as error:
        raise PlatformUnavailable(
            f"--medpubsub-kafka={bootstrap}: the host name {host} does not resolve here ({error})."
        ) from None
    addresses = [str(info[4][0]) for info in infos]
    ipv4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    return (ipv4 or addresses)[0]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: only the cluster's DNS knows


def prepare(external: ExternalKafka, topics: list[TopicSpec]) -> None:
    """Wait until the broker answers from here, then create the topics it lacks (the KafkaTopics
    of the render are not applied without Strimzi)."""
    admin = AdminClient(quiet(common_config(external.kafka, "medpubsub-external-probe")))

    def brokers() -> str:
        try:
            metadata = admin.list_topics(timeout=5)
        except KafkaException as error:
            return f"no answer ({error.args[0].str()})"
        return ", ".join(f"{b.host}:{b.port}" for b in metadata.brokers.values()) or "no broker"

    advertised = wait_step(
        f"Kafka at {external.bootstrap} to answer",
        brokers,
        lambda seen: not seen.startswith("no "),
        ANSWER_TIMEOUT_S,
    )
    if any(_is_loopback(address.rpartition(":")[0]) for address in advertised.split(", ")):
        raise PlatformError(
            f"the broker at {external.bootstrap} advertises {advertised}, a loopback address the "
            "pods cannot reach; start it advertising the host's address (`medpubsub kafka "
            "--advertise ADDR`)"
        )
    progress.say(f"Kafka at {external.bootstrap} advertises {advertised} to the pods")
    with progress.step(f"creating the system's topics on {external.bootstrap}"):
        try:
            ensure_topics(external.kafka, topics)
        except RuntimeError as error:
            raise PlatformError(str(error)) from None
