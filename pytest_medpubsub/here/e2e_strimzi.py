"""The Strimzi stage of `make e2e-here`: the path a kind or minikube user takes, on the cluster
here. The harness installs Strimzi 1.2.0 (from the cache `make strimzi-here` fills, through the
same code as a downloaded release) and KEDA as released, applies the secured overlay (SCRAM
identities, ACLs, KEDA logging in as `keda`), and runs:

1. the scenarios, the Locust ramp among them, with the system kept;
2. `chaos run` of chaos/kill-medicine.json and chaos/kill-kafka.json on it, the probes logging in
   with the run's credentials file (MEDPUBSUB_CREDENTIALS_FILE);
3. the steady state once more without keeping anything: orders flow after the broker kill, and
   the harness removes what it applied (KafkaTopics first, then the namespace).

Without cached Strimzi images or manifest it prints one line saying why it was skipped; the
figures record the reason, so a skipped stage is never taken for a passed one.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.chaos.target import CREDENTIALS_FILE_ENV
from pytest_medpubsub.here import evidence, kube, runs, storage, strimzi
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.here.layout import Layout
from pytest_medpubsub.here.state import ClusterState
from pytest_medpubsub.platforms.cluster_deploy import CREDENTIALS_FILE

NAMESPACE = runs.NAMESPACE
# The stage runs under the plugin's default SLOs (p95 3 s, p99 4 s), like the bring-your-own-Kafka
# stage. Until 2026-12-07 it loosened them to p95 5 s / p99 8 s for its slow first seconds (orders
# made 1-3 s late, p95 4.06 s / p99 5.04 s in a fresh-clone rehearsal). The makers' logs, kept
# since (--medpubsub-diagnostics=always), showed why: a warm maker left at its idle timeout 2 s into
# the steady state and KEDA's replacement joined 5 s later, each move registering 20 partitions
# with SCRAM at 500m CPU. Warm makers stay at rest since (system/medicine/warm.py): steady state
# p95 2.13 s / p99 2.14 s, Locust ramp 2.13 / 2.54 s, after both chaos runs 2.11 / 3.05 s.
# The step ramp runs in the bring-your-own-Kafka stage (e2e.py), not here: with the broker, both
# operators and SCRAM on the same 2 cores, its step to 15 patients (14 patient pods starting at
# once) is beyond what this machine holds. Measured in this stage, each run alone: p95 4.3-10.7 s,
# p99 4.8-15.6 s over twelve runs on 2026-12-06 (two fresh-clone CI runs failed on it: 7.56 s and
# 10.63 s against 7 s), the machine 82-94 % busy with 0-24 % steal, and makers piling up (5-13) as
# the lag grew; in the bring-your-own stage it measured p95 3.9-4.0 s. It is run here by hand
# (docs/kubernetes.md), not on every CI run.
SCENARIOS = (
    "scenarios/test_steady_state.py",
    "scenarios/test_maker_killed.py",
    "scenarios/test_backlog_drain.py",
    "scenarios/test_load_ramp.py",
)
CHAOS = ("chaos/kill-medicine.json", "chaos/kill-kafka.json")
AFTER_CHAOS = ("scenarios/test_steady_state.py",)
EXTERNAL_PORT = 32100  # k8s/components/external-listener's bootstrap NodePort


def stage(  # noqa: PLR0917 - the stage's inputs, as e2e.run has them
    layout: Layout,
    state: ClusterState,
    report_dir: Path,
    env: dict[str, str],
    figures: dict[str, object],
    strimzi_src: Path | None = None,
) -> int:
    try:
        cache = (
            strimzi.ensure(layout, strimzi_src) if strimzi_src else strimzi.StrimziCache.of(layout)
        )
    except strimzi.StrimziMissing as missing:
        return _skipped(figures, str(missing))
    reason = cache.missing()
    if reason is not None:
        return _skipped(figures, reason)
    report_dir.mkdir(parents=True, exist_ok=True)
    storage.ensure(layout)
    storage.recycle(layout)
    strimzi.import_images(cache, Path(state.containerd_socket))
    strimzi_args = (f"--medpubsub-strimzi-manifest={cache.manifest}",)
    status = runs.timed(
        figures,
        "strimzi_scenarios",
        lambda: runs.pytest_run(
            state,
            None,
            report_dir,
            env,
            scenarios=SCENARIOS,
            keep=True,
            extra=strimzi_args,
        ),
    )
    figures["strimzi_evidence"] = _evidence(Path(env["KUBECONFIG"]), report_dir)
    chaos_env = dict(
        env,
        MEDPUBSUB_KAFKA_BOOTSTRAP=f"{state.address}:{EXTERNAL_PORT}",
        MEDPUBSUB_NAMESPACE=NAMESPACE,
        **{CREDENTIALS_FILE_ENV: str(report_dir / CREDENTIALS_FILE)},
    )
    for experiment in CHAOS:
        result = runs.timed(
            figures,
            f"strimzi_chaos_{Path(experiment).stem}",
            partial(runs.chaos_run, experiment, report_dir, chaos_env),
        )
        status = status or result
    after = runs.timed(
        figures,
        "strimzi_after_chaos",
        lambda: runs.pytest_run(
            state,
            None,
            report_dir / "after-chaos",
            env,
            scenarios=AFTER_CHAOS,
            keep=False,
            extra=strimzi_args,
        ),
    )
    return status or after


def _skipped(figures: dict[str, object], reason: str) -> int:
    progress.say(f"Strimzi stage skipped: {reason}")
    figures["strimzi_skipped"] = reason
    return 0


def _evidence(kubeconfig: Path, report_dir: Path) -> dict[str, object]:
    """Strimzi's pods and users as the cluster lists them, into strimzi-evidence.json."""
    try:
        pods = kube.get_json(
            kubeconfig, "-n", NAMESPACE, "pods", "-l", "strimzi.io/cluster=medpubsub"
        )
        users = kube.get_json(kubeconfig, "-n", NAMESPACE, "kafkausers")
    except HereError as error:
        progress.say(f"could not list Strimzi's pods and users: {error}")
        return {}
    summary = evidence.strimzi(pods, users)
    (report_dir / "strimzi-evidence.json").write_text(json.dumps(summary, indent=2) + "\n")
    totals = {key: summary[key] for key in ("kafka_pod_owner_kinds", "kafka_users_ready")}
    progress.say(f"Strimzi on the cluster: {totals}")
    return totals


def source_from_environment() -> Path | None:
    """STRIMZI_SRC, as `make e2e-here STRIMZI_SRC=DIR` passes it (None when unset or empty)."""
    given = os.environ.get("STRIMZI_SRC", "").strip()
    return Path(given) if given else None
