"""The operators a run needs on its cluster (Strimzi, KEDA), and installing those that are not
there yet.

Which ones: KEDA unless the design starts its makers itself, Strimzi unless Kafka is outside the
cluster. An operator found installed is used as it is and never removed; one this run installs
is recorded, so that the teardown (`cluster_teardown.py`) takes out exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_medpubsub import designs, progress
from pytest_medpubsub.platforms import operators
from pytest_medpubsub.platforms.cluster_backends import ClusterOptions
from pytest_medpubsub.platforms.kubectl import Kubectl

Installed = list[tuple[operators.Operator, str]]
"""The operators this run installed, each with the manifest it applied (to delete the same)."""


@dataclass(frozen=True)
class Wanted:
    """An operator the run needs, as its manifest has it; `manifest` is None until downloaded
    (a release is fetched only when the operator is not installed already)."""

    operator: operators.Operator
    manifest: str | None


def wanted_operator(
    operator: operators.Operator, given: str | None, options: ClusterOptions
) -> Wanted:
    """`operator` as the manifest `given` (a file or URL) has it; its images must be local
    when the cluster imports them from this machine's containerd."""
    if given is None:
        return Wanted(operator, None)
    text = operators.release_manifest(operator, given)
    operator = operators.as_given(operator, text)
    if options.containerd:
        operators.require_local_images(operator, text, given, options.containerd)
    return Wanted(operator, text)


def wanted_operators(options: ClusterOptions, *, kafka_outside: bool) -> list[Wanted]:
    """KEDA unless the design starts its makers itself; Strimzi unless Kafka is outside the
    cluster (`kafka_outside`)."""
    given: dict[operators.Operator, str | None] = {}
    if designs.design(options.design).needs_keda:
        given[operators.KEDA] = options.keda_manifest
    else:
        progress.say(f"the {options.design} design starts its makers: KEDA is not installed")
    if not kafka_outside:
        given = {operators.STRIMZI: options.strimzi_manifest, **given}
    elif options.strimzi_manifest:
        progress.say("--medpubsub-kafka is given: Strimzi is not installed")
    return [wanted_operator(op, manifest, options) for op, manifest in given.items()]


def install_missing(kubectl: Kubectl, wanted: list[Wanted], installed: Installed) -> None:
    """Install what is not installed yet, appending each to `installed` as soon as it is (a
    later failure still tears it down); then wait for the Deployments of the manifest actually
    applied (a downloaded release is read like a given file)."""
    ready: list[operators.Operator] = []
    for want in wanted:
        if operators.is_installed(kubectl, want.operator):
            progress.say(
                f"{want.operator.name} is installed already "
                f"({', '.join(want.operator.deployments)} in {want.operator.namespace}); "
                "using it"
            )
            ready.append(want.operator)
            continue
        text = want.manifest or operators.release_manifest(want.operator, None)
        operator = operators.as_given(want.operator, text)
        operators.install(kubectl, operator, text)
        installed.append((operator, text))
        ready.append(operator)
    for operator in ready:
        operators.wait_ready(kubectl, operator)
