"""What explains a failed cluster run, written as plain files into the report directory.

Pods, events and Jobs of the namespace; the ScaledJob, Kafka, KafkaUser and TriggerAuthentication
resources with their status; KEDA's Deployments, admission webhooks and metrics APIService; logs
of the makers, patients, Kafka, Strimzi's cluster and entity operators and KEDA's three
Deployments. Every item is best effort: a cluster
that is half up still yields everything that can be read, and an item that cannot be read says
why in its file. Reads are short (20 s each), and a cluster that does not even list its pods
yields just that, instead of minutes of timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.kubectl import Kubectl

MAX_POD_LOGS = 20
READ_TIMEOUT_S = 20.0
OPERATOR_LOGS = {
    "strimzi-cluster-operator": "medpubsub",
    # Strimzi's topic and user operators (one pod, both containers: --all-containers).
    "medpubsub-entity-operator": "medpubsub",
    "keda-operator": "keda",
    "keda-metrics-apiserver": "keda",
    "keda-admission": "keda",
}
POD_GROUPS = {
    "makers": "app.kubernetes.io/name=medicine",
    "patients": "app.kubernetes.io/name=patient",
    "kafka": "strimzi.io/cluster=medpubsub",
}


def dump(kubectl: Kubectl, directory: Path) -> None:
    """Write the diagnostics of the medpubsub namespace into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)

    def save(name: str, read: Callable[[], str]) -> bool:
        try:
            text = read()
        except PlatformError as error:
            (directory / name).write_text(f"could not be read: {error}\n", encoding="utf-8")
            return False
        (directory / name).write_text(text, encoding="utf-8")
        return True

    def get(*args: str, namespace: str | None = None) -> Callable[[], str]:
        return partial(kubectl.run, *args, namespace=namespace, timeout_s=READ_TIMEOUT_S)

    if not save("pods.txt", get("get", "pods", "--output", "wide")):
        return  # the API server does not answer: every other item would wait as long in vain
    save("events.txt", get("get", "events", "--sort-by=.lastTimestamp"))
    save("jobs.txt", get("get", "jobs", "--output", "wide"))
    save("scaledjob.yaml", get("get", "scaledjob", "medicine", "--output", "yaml"))
    save("scaledjob-describe.txt", get("describe", "scaledjob", "medicine"))
    save("kafka.yaml", get("get", "kafka", "medpubsub", "--output", "yaml"))
    save("kafkanodepools.yaml", get("get", "kafkanodepools", "--output", "yaml"))
    save("kafkatopics.yaml", get("get", "kafkatopics", "--output", "yaml"))
    save("kafkausers.yaml", get("get", "kafkausers", "--output", "yaml"))
    save("triggerauthentications.yaml", get("get", "triggerauthentications", "--output", "yaml"))
    save("keda-events.txt", get("get", "events", "--sort-by=.lastTimestamp", namespace="keda"))
    save("keda-deployments.txt", get("get", "deployments", "--output", "wide", namespace="keda"))
    # KEDA's admission webhooks and metrics API: whether the API server can reach them at all.
    save(
        "keda-webhooks.yaml",
        get("get", "validatingwebhookconfiguration", "keda-admission", "--output", "yaml",
            namespace=""),
    )  # fmt: skip
    save(
        "keda-apiservice.yaml",
        get("get", "apiservice", "v1beta1.external.metrics.k8s.io", "--output", "yaml",
            namespace=""),
    )  # fmt: skip
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    for deployment, namespace in OPERATOR_LOGS.items():
        save(
            f"logs/{deployment}.log",
            partial(
                kubectl.logs,
                f"deployment/{deployment}",
                namespace=namespace,
                timeout_s=READ_TIMEOUT_S,
            ),
        )
    for group, selector in POD_GROUPS.items():
        try:
            pods = kubectl.items("pods", selector=selector)
        except PlatformError as error:
            (logs / f"{group}.error.txt").write_text(str(error), encoding="utf-8")
            continue
        pods.sort(key=lambda pod: str(pod["metadata"].get("creationTimestamp", "")), reverse=True)
        for pod in pods[:MAX_POD_LOGS]:
            name = str(pod["metadata"]["name"])
            save(
                f"logs/{group}-{name}.log",
                partial(kubectl.logs, f"pod/{name}", timeout_s=READ_TIMEOUT_S),
            )
