"""The two things every e2e stage runs against the cluster here: pytest with the harness on
`--medpubsub-cluster=existing`, and `chaos run` of one experiment on the system it kept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here import kube
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.here.state import ClusterState

NAMESPACE = "medpubsub"
PYTEST_TIMEOUT_S = 2700.0
CHAOS_TIMEOUT_S = 1200.0
STEADY_BEFORE_CHAOS_S = 30.0


def timed(figures: dict[str, object], name: str, step: Callable[[], int]) -> int:
    """Run one stage, recording its duration and exit status in the run's figures."""
    started = time.monotonic()
    status = step()
    figures[f"{name}_s"] = round(time.monotonic() - started, 1)
    figures[f"{name}_status"] = status
    return status


def pytest_run(
    state: ClusterState,
    bootstrap: str | None,
    report_dir: Path,
    env: dict[str, str],
    *,
    design: str = "scaledjob",
    scenarios: tuple[str, ...],
    keep: bool = True,
    extra: tuple[str, ...] = (),
) -> int:
    """pytest on the existing cluster here: with the embedded broker at `bootstrap`, or (None)
    with Strimzi, whose manifest `extra` names. Every stage runs under the plugin's default SLOs,
    which the scenarios' markers override."""
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--medpubsub-cluster=existing",
        *([f"--medpubsub-kafka={bootstrap}"] if bootstrap else []),
        *extra,
        f"--medpubsub-keda-manifest={state.keda_manifest}",
        f"--medpubsub-containerd={state.containerd_socket}",
        f"--medpubsub-report={report_dir}",
        f"--medpubsub-design={design}",
        # Passing scenarios keep their makers' logs too: a stage's figures are explained from
        # them (when its orders were polled, made and committed), not only a failure's.
        "--medpubsub-diagnostics=always",
        # The chaos experiment runs against the ScaledJob design's system afterwards.
        *(["--medpubsub-keep"] if keep else []),
        *scenarios,
    ]
    progress.say("running: " + " ".join(args[2:]))
    try:
        return subprocess.run(args, env=env, timeout=PYTEST_TIMEOUT_S, check=False).returncode
    except subprocess.TimeoutExpired:
        progress.say(f"the scenarios did not finish within {PYTEST_TIMEOUT_S:g} s")
        return 1


def chaos_run(experiment: str, report_dir: Path, chaos_env: dict[str, str]) -> int:
    """One experiment on the kept system, one patient ordering first (the hypothesis needs
    load); 0 when it completed and did not deviate."""
    kubeconfig = Path(chaos_env["KUBECONFIG"])
    try:
        kube.kubectl(kubeconfig, "-n", NAMESPACE, "scale", "deployment/patient", "--replicas=1")
        kube.kubectl(
            kubeconfig, "-n", NAMESPACE, "rollout", "status", "deployment/patient",
            "--timeout=120s", timeout_s=150,
        )  # fmt: skip
    except HereError as error:
        progress.say(f"the system is not up for the chaos experiment: {error}")
        return 1
    with progress.step(f"letting one patient order for {STEADY_BEFORE_CHAOS_S:g} s"):
        time.sleep(STEADY_BEFORE_CHAOS_S)
    name = Path(experiment).stem
    journal = report_dir / f"chaos-{name}.json"
    chaos = Path(sys.executable).with_name("chaos")
    args = [
        str(chaos), "--no-version-check", "--log-file", str(report_dir / f"chaos-{name}.log"),
        "run", "--journal-path", str(journal), experiment,
    ]  # fmt: skip
    with progress.step(f"chaos run {experiment}"):
        try:
            subprocess.run(args, env=chaos_env, timeout=CHAOS_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            progress.say(f"the chaos experiment did not finish within {CHAOS_TIMEOUT_S:g} s")
            return 1
    return judge(journal)


def judge(journal: Path) -> int:
    try:
        record = json.loads(journal.read_text())
    except (OSError, ValueError):
        progress.say(f"the chaos experiment wrote no journal at {journal}")
        return 1
    status, deviated = record.get("status"), record.get("deviated")
    progress.say(f"chaos: status {status}, deviated {deviated} (journal: {journal})")
    return 0 if status == "completed" and not deviated else 1
