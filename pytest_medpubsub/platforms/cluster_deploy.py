"""Putting the system on a cluster: its images, the order its objects are applied in, and the
waits for Strimzi's Kafka, topics and users (with the users' passwords read back).

The order matters: Kafka and its users first, what starts the makers once they are Ready
(`split_makers_starters`). KEDA's reconcile of a ScaledJob whose broker or `keda` Secret is
missing fails and backs off (doubling), and Secrets are not watched, so its retry could come
minutes late.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import partial

from pytest_medpubsub import progress
from pytest_medpubsub.k8s.objects import Manifest, of_kind
from pytest_medpubsub.kafka.security import Credentials
from pytest_medpubsub.platforms.cluster_backends import ClusterBackend, ClusterOptions
from pytest_medpubsub.platforms.cluster_designs import DISPATCHER
from pytest_medpubsub.platforms.images import build, choose_base, service_images
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.status import pods_summary, ready_state
from pytest_medpubsub.platforms.waits import wait_step

CREDENTIALS_FILE = "credentials.json"
"""In the report directory: the Kafka users' passwords, for `chaos run` on a kept system."""
KAFKA_NAME = "medpubsub"

# Pulling the Kafka image (~700 MB) on a fresh CI runner dominates the Kafka wait.
KAFKA_READY_TIMEOUT_S = 900.0
TOPICS_READY_TIMEOUT_S = 300.0
USER_SECRETS_TIMEOUT_S = 180.0


def build_and_load_images(
    options: ClusterOptions, backend: ClusterBackend, objects: list[Manifest]
) -> Mapping[str, str]:
    """Build the images `objects` run from this checkout and load them into the cluster; the
    name each is pulled by there."""
    images = service_images(objects)
    logs = options.report_dir / "cluster"
    base = choose_base(options.project_dir, logs)
    for service, image in sorted(images.items()):
        with progress.step(f"building {image} on {base.image} (docker build, log in {logs})"):
            build(options.project_dir, service, image, logs, base.image)
    return backend.load_images(sorted(images.values()))


# What starts makers (and KEDA's login for it) waits until Kafka and its users are Ready.
_MAKERS_STARTERS = {
    ("ScaledJob", None),
    ("TriggerAuthentication", None),
    ("Deployment", DISPATCHER),
}


def split_makers_starters(objects: list[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """(everything else, what starts the makers): the ScaledJob and its TriggerAuthentication,
    or the dispatcher's Deployment."""
    first: list[Manifest] = []
    then: list[Manifest] = []
    for item in objects:
        kind, name = item.get("kind"), item.get("metadata", {}).get("name")
        starts = (kind, None) in _MAKERS_STARTERS or (kind, name) in _MAKERS_STARTERS
        (then if starts else first).append(item)
    return first, then


def wait_for_kafka(kubectl: Kubectl, objects: list[Manifest]) -> None:
    """Kafka, every KafkaTopic and every KafkaUser Ready (each wait shows Strimzi's reason)."""
    wait_step(
        f"Kafka {KAFKA_NAME} to be Ready",
        partial(_kafka_state, kubectl),
        lambda state: state.startswith("Ready;"),
        KAFKA_READY_TIMEOUT_S,
        interval_s=5.0,
    )
    for kind in ("KafkaTopic", "KafkaUser"):
        expected = len(of_kind(objects, kind))
        if not expected:
            continue
        wait_step(
            f"the {expected} {kind}s to be Ready",
            partial(_resources_state, kubectl, kind.lower() + "s"),
            partial(_all_ready, expected),
            TOPICS_READY_TIMEOUT_S,
        )


def user_credentials(kubectl: Kubectl, objects: list[Manifest]) -> Credentials | None:
    """The SCRAM users of a secured Kafka (k8s/components/secure-kafka), read from the Secrets
    Strimzi's User Operator creates for them (None: the render has no KafkaUser)."""
    names = [str(user["metadata"]["name"]) for user in of_kind(objects, "KafkaUser")]
    if not names:
        return None

    found: dict[str, str] = {}

    def missing() -> list[str]:
        """The users without a password yet (names only: a wait's message shows what it saw)."""
        for name in names:
            if name not in found and kubectl.exists("secret", name):
                data = kubectl.get("secret", name).get("data") or {}
                if "password" in data:
                    found[name] = base64.b64decode(data["password"]).decode()
        return [name for name in names if name not in found]

    wait_step(
        f"the Secrets of the KafkaUsers {', '.join(names)}",
        missing,
        lambda left: not left,
        USER_SECRETS_TIMEOUT_S,
    )
    return Credentials({name: (name, password) for name, password in found.items()})


def _kafka_state(kubectl: Kubectl) -> str:
    state = ready_state(kubectl.get("kafka", KAFKA_NAME))
    pods = kubectl.items("pods", selector=f"strimzi.io/cluster={KAFKA_NAME}")
    return f"{state}; pods: {pods_summary(pods)}"


def _all_ready(expected: int, states: list[str]) -> bool:
    return len(states) == expected and all(state.endswith(": Ready") for state in states)


def _resources_state(kubectl: Kubectl, plural: str) -> list[str]:
    """`name: state` of each KafkaTopic (by topic name) or KafkaUser."""
    return sorted(
        f"{item['spec'].get('topicName', item['metadata']['name'])}: {ready_state(item)}"
        for item in kubectl.items(plural)
    )
