"""Taking out what a run added to a cluster it did not create (one it created is deleted whole
by its backend instead).

The order matters: what starts the makers (the ScaledJob, if the design has one) and the
KafkaTopics go first, while KEDA and Strimzi's topic operator still run to release their
finalizers; then the namespace; then the operators this run installed, newest first.
"""

from __future__ import annotations

from pytest_medpubsub import progress
from pytest_medpubsub.platforms import operators
from pytest_medpubsub.platforms.cluster_designs import ClusterDesign
from pytest_medpubsub.platforms.cluster_operators import Installed
from pytest_medpubsub.platforms.kubectl import NAMESPACE, Kubectl

TEARDOWN_TIMEOUT_S = 300.0


def remove_system(
    kubectl: Kubectl, where: str, design: ClusterDesign | None, *, with_strimzi: bool
) -> None:
    """Delete the system applied to the cluster `where` describes; `design` is None when the
    start failed before it was known, `with_strimzi` False when Kafka is outside the cluster
    (then there is no KafkaTopic kind)."""
    with progress.step(f"removing the medpubsub system from {where}"):
        if design is not None:
            design.remove(kubectl, TEARDOWN_TIMEOUT_S)
        if with_strimzi:
            kubectl.delete("kafkatopics", "--all", timeout_s=TEARDOWN_TIMEOUT_S)
        kubectl.delete("namespace", NAMESPACE, namespace="", timeout_s=TEARDOWN_TIMEOUT_S)


def uninstall_operators(kubectl: Kubectl, installed: Installed) -> None:
    """Uninstall the operators this run installed, newest first, emptying `installed` as it
    goes (a second call after a failure does not repeat what was done)."""
    while installed:
        operator, manifest = installed.pop()
        operators.uninstall(kubectl, operator, manifest)
