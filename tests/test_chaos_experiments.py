"""The experiments in chaos/: valid for Chaos Toolkit, and aimed at what the manifests deploy.

`chaos validate` runs as Chaos Toolkit's users run it (a subprocess), so the activities'
modules must import and every provider's arguments must bind to its function's signature. The
rest checks what validation cannot: that the hypothesis is checked before and after, that the
rollbacks always run, and that label selectors and names match k8s/ and keda/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub import project
from pytest_medpubsub.chaos import actions, dispatcher, probes

CHAOS_DIR = project.project_dir() / "chaos"
EXPERIMENTS = sorted(path.name for path in CHAOS_DIR.glob("*.json"))
LOCAL = [name for name in EXPERIMENTS if name.endswith("-local.json")]
KUBERNETES = [name for name in EXPERIMENTS if not name.endswith("-local.json")]
# The venv's `chaos`; --no-version-check keeps it from asking the internet for a newer release.
_CHAOS = str(Path(sys.executable).with_name("chaos"))
OUR_MODULES = {
    actions.__name__: actions.__all__,
    dispatcher.__name__: dispatcher.__all__,
    probes.__name__: probes.__all__,
}


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CHAOS_DIR / name).read_text())
    return document


def activities(experiment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from experiment["steady-state-hypothesis"]["probes"]
    yield from (activity for activity in experiment["method"] if "ref" not in activity)
    yield from experiment["rollbacks"]


def test_the_six_experiments_are_there() -> None:
    assert EXPERIMENTS == [
        "kill-dispatcher-local.json",
        "kill-dispatcher.json",
        "kill-kafka-local.json",
        "kill-kafka.json",
        "kill-medicine-local.json",
        "kill-medicine.json",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_chaos_validate_accepts_it(name: str) -> None:
    completed = subprocess.run(
        [_CHAOS, "--no-version-check", "--no-log-file", "validate", name],
        cwd=CHAOS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "experiment syntax and semantic look valid" in completed.stdout + completed.stderr


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_steady_state_is_checked_and_rollbacks_always_run(name: str) -> None:
    experiment = load(name)
    assert experiment["title"]
    assert experiment["description"]
    assert "medpubsub" in experiment["tags"]
    hypothesis = experiment["steady-state-hypothesis"]
    assert {probe["provider"]["func"] for probe in hypothesis["probes"]} == {
        "orders_delivered_within",
        "no_lost_orders",
        "no_duplicate_tabs",
    }
    assert all(probe["tolerance"] is True for probe in hypothesis["probes"])
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    assert experiment["rollbacks"], "a fault without rollbacks leaves the system changed"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_variable_used_is_configured(name: str) -> None:
    experiment = load(name)
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(experiment)))
    assert used <= set(experiment["configuration"]), used - set(experiment["configuration"])


@pytest.mark.parametrize("name", LOCAL)
def test_local_experiments_use_our_extension_under_load(name: str) -> None:
    experiment = load(name)
    for activity in activities(experiment):
        provider = activity["provider"]
        assert provider["func"] in OUR_MODULES[provider["module"]], activity["name"]
        if "state_file" in provider.get("arguments", {}):
            assert provider["arguments"]["state_file"] == "${state_file}"
    state_file = experiment["configuration"]["state_file"]
    assert state_file == {
        "type": "env",
        "key": "MEDPUBSUB_STATE_FILE",
        "default": ".medpubsub/local.json",
    }
    funcs = [a["provider"]["func"] for a in experiment["method"] if "provider" in a]
    assert funcs[0] == "start_load", "the faults are injected under load"
    assert "stop_load" in {a["provider"]["func"] for a in experiment["rollbacks"]}


def test_kill_medicine_targets_the_pods_of_the_scaledjob() -> None:
    experiment = load("kill-medicine.json")
    scaled_job = yaml.safe_load((project.project_dir() / project.SCALEDJOB_MANIFEST).read_text())
    pod_labels = scaled_job["spec"]["jobTargetRef"]["template"]["metadata"]["labels"]
    selector = experiment["configuration"]["maker_selector"]
    assert _selector(selector) == pod_labels
    kills = [a for a in experiment["method"] if a.get("name") == "terminate-maker-pods"]
    assert len(kills) == 1
    refs = [a for a in experiment["method"] if a.get("ref") == "terminate-maker-pods"]
    assert len(kills) + len(refs) >= 3, "several kills"
    provider = kills[0]["provider"]
    assert (provider["module"], provider["func"]) == ("chaosk8s.pod.actions", "terminate_pods")
    assert provider["arguments"]["label_selector"] == "${maker_selector}"
    assert provider["arguments"]["ns"] == "${ns}"
    assert kills[0]["pauses"]["after"] > 0
    _assert_namespace_default(experiment, scaled_job["metadata"]["namespace"])


def test_kill_dispatcher_targets_the_pod_of_the_dispatcher_deployment() -> None:
    experiment = load("kill-dispatcher.json")
    deployment = yaml.safe_load(
        (project.project_dir() / "k8s/components/dispatcher/deployment.yaml").read_text()
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selector(experiment["configuration"]["dispatcher_selector"]) == pod_labels
    [kill] = [a for a in experiment["method"] if a.get("name") == "terminate-the-dispatcher-pod"]
    refs = [a for a in experiment["method"] if a.get("ref") == "terminate-the-dispatcher-pod"]
    assert len(refs) >= 1, "killed more than once"
    assert kill["provider"]["arguments"]["label_selector"] == "${dispatcher_selector}"
    assert kill["provider"]["arguments"]["grace_period"] == 0
    _assert_namespace_default(experiment, deployment["metadata"]["namespace"])


def test_kill_kafka_targets_the_broker_pods_of_the_strimzi_cluster() -> None:
    experiment = load("kill-kafka.json")
    manifests = list(
        yaml.safe_load_all((project.project_dir() / "k8s/base/kafka.yaml").read_text())
    )
    kafka = next(doc for doc in manifests if doc["kind"] == "Kafka")
    selector = _selector(experiment["configuration"]["broker_selector"])
    assert selector == {
        "strimzi.io/cluster": kafka["metadata"]["name"],
        "strimzi.io/broker-role": "true",
    }
    pools = [doc for doc in manifests if doc["kind"] == "KafkaNodePool"]
    assert any("broker" in pool["spec"]["roles"] for pool in pools)
    _assert_namespace_default(experiment, kafka["metadata"]["namespace"])


@pytest.mark.parametrize("name", KUBERNETES)
def test_kubernetes_experiments_watch_kafka_through_the_external_listener(name: str) -> None:
    experiment = load(name)
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        assert probe["provider"]["arguments"]["bootstrap"] == "${bootstrap}"
    bootstrap = experiment["configuration"]["bootstrap"]
    assert bootstrap["key"] == "MEDPUBSUB_KAFKA_BOOTSTRAP"
    rollback_funcs = {a["provider"]["func"] for a in experiment["rollbacks"]}
    assert "scale_deployment" in rollback_funcs, "the patients are scaled back"


def _selector(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(","))


def _assert_namespace_default(experiment: dict[str, Any], namespace: str) -> None:
    assert experiment["configuration"]["ns"]["default"] == namespace
