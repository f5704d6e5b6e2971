"""The kind backend, proven here by the exact command lines it runs (kind needs privileged
Docker, which this machine lacks; the `e2e` CI job runs them for real):

- the node image is pinned by digest, to a Kubernetes Strimzi 1.2.0 and KEDA 2.20 support, for
  the kind release the CI job installs;
- `kind create cluster` / `kind delete cluster` are pytest-kind's command lines, run with a
  timeout that stops kind's whole process group and says what was seen last;
- how images are loaded is in test_k8s_kind_images.py.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_medpubsub import processes, progress
from pytest_medpubsub.platforms import kind
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.kind import KindBackend
from pytest_medpubsub.platforms.watched import last_line, run_watched
from pytest_medpubsub.waiting import wait_for
from tests.standin_tools import Recorder

PROJECT = Path(__file__).resolve().parents[1]
WORKFLOW = PROJECT / ".github/workflows/ci.yml"
CLASSIC = '[["Backing Filesystem","extfs"],["Supports d_type","true"],["userxattr","false"]]'
CONTAINERD = '[["driver-type","io.containerd.snapshotter.v1"]]'
PATIENT_ID = "0123456789abcdef" * 4
MEDICINE_ID = "fedcba9876543210" * 4


# ---------------------------------------------------------------------- the pins


def test_the_node_image_is_pinned_by_digest_to_a_kubernetes_both_operators_support() -> None:
    match = re.fullmatch(r"kindest/node:v1\.(\d+)\.(\d+)@sha256:([0-9a-f]{64})", kind.NODE_IMAGE)
    assert match, kind.NODE_IMAGE
    minor = int(match.group(1))
    assert minor >= 30  # Strimzi 1.2.0: Kubernetes 1.30 and later
    assert 33 <= minor <= 35  # KEDA 2.20 is tested on 1.33-1.35


def test_the_ci_job_installs_the_kind_release_the_node_image_was_built_for() -> None:
    jobs: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    step = next(s for s in jobs["e2e"]["steps"] if s.get("uses", "").startswith("helm/kind"))
    assert step["with"]["version"] == kind.KIND_VERSION
    assert step["with"]["install_only"] is True  # the harness creates the cluster, pinned


@pytest.mark.parametrize(
    ("output", "installed", "warns"),
    [
        ("kind v0.29.0 go1.24.2 linux/amd64\n", "v0.29.0", False),
        ("kind v0.33.0 go1.25.1 linux/arm64\n", "v0.33.0", True),
        ("kind v0.29.0-alpha.12+abcdef go1.24.2 linux/amd64", "v0.29.0-alpha.12+abcdef", True),
        ("", None, True),
        ("0.29.0\n", None, True),  # `kind version -q`: not what the backend runs
    ],
)
def test_another_kind_release_gets_a_warning_naming_the_pin(
    output: str, installed: str | None, warns: bool
) -> None:
    assert kind.installed_version(output) == installed
    warning = kind.version_warning(installed)
    assert (warning is not None) == warns
    if warning:
        assert kind.KIND_VERSION in warning
        assert kind.NODE_IMAGE in warning


@pytest.mark.parametrize(
    ("node_image", "warns"),
    [
        (kind.NODE_IMAGE + "\n", False),
        ("kindest/node:v1.33.1", True),  # the tag alone may be another kind's build
        ("kindest/node:v1.27.3@sha256:" + "a" * 64, True),
        ("", True),
    ],
)
def test_a_reused_cluster_on_another_node_image_gets_a_warning(
    node_image: str, warns: bool
) -> None:
    warning = kind.node_image_warning("medpubsub", node_image)
    assert (warning is not None) == warns
    if warning:
        assert "kind delete cluster --name medpubsub" in warning


# ---------------------------------------------------------------------- create and delete


def test_create_and_delete_command_lines() -> None:
    kubeconfig = Path("cache/kind/medpubsub/kubeconfig")
    config = Path("project/k8s/overlays/kind/kind-config.yaml")
    assert kind.create_command("kind", "medpubsub", kubeconfig, config) == [
        "kind",
        "create",
        "cluster",
        "--name=medpubsub",
        "--kubeconfig=cache/kind/medpubsub/kubeconfig",
        f"--image={kind.NODE_IMAGE}",
        "--config",
        "project/k8s/overlays/kind/kind-config.yaml",
    ]
    assert kind.delete_command("kind", "medpubsub", kubeconfig) == [
        "kind",
        "delete",
        "cluster",
        "--name=medpubsub",
        "--kubeconfig=cache/kind/medpubsub/kubeconfig",
    ]
    assert kind.node_containers_command("medpubsub") == [
        "docker",
        "ps",
        "--all",
        "--filter",
        "label=io.x-k8s.kind.cluster=medpubsub",
        "--format",
        "{{.Names}}: {{.Status}}",
    ]
    assert kind.node_image_command("medpubsub") == [
        "docker",
        "inspect",
        "--format",
        "{{.Config.Image}}",
        "medpubsub-control-plane",
    ]


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: k, user: {}}]
contexts: [{name: k, context: {cluster: k, user: k}}]
current-context: k
"""


def test_create_and_delete_are_the_command_lines_pytest_kind_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-kind's own `KindCluster(image=…).create(config)` and `delete()`, run against the
    recording stand-in, give exactly the command lines the backend runs with a timeout."""
    from pytest_kind import KindCluster

    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)  # pytest-kind makes .pytest-kind/<name>/ here
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)  # what `kind create cluster` would have written
    config = tmp_path / "kind-config.yaml"
    cluster = KindCluster(
        "medpubsub",
        kubeconfig=kubeconfig,
        image=kind.NODE_IMAGE,
        kind_path=recorder.bin / "kind",
        kubectl_path=recorder.bin / "kubectl",
    )
    cluster.create(config_file=config)
    cluster.delete()
    assert recorder.calls() == [
        ["kind", "get", "clusters"],
        kind.create_command("kind", "medpubsub", kubeconfig, config),
        kind.delete_command("kind", "medpubsub", kubeconfig),
    ]


def test_up_creates_the_cluster_on_the_pinned_image_and_down_deletes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.setenv("MEDPUBSUB_CACHE_DIR", str(tmp_path / "cache"))
    backend = KindBackend(PROJECT, "medpubsub")
    backend.up()
    created = [backend.created]
    backend.down()
    assert [*created, backend.created] == [True, False]
    kubeconfig = tmp_path / "cache" / "kind" / "medpubsub" / "kubeconfig"
    assert recorder.calls() == [
        ["kind", "version"],
        ["kind", "get", "clusters"],
        kind.create_command("kind", "medpubsub", kubeconfig, PROJECT / kind.KIND_CONFIG),
        kind.delete_command("kind", "medpubsub", kubeconfig),
    ]


def test_a_reused_cluster_is_checked_and_never_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, monkeypatch)
    said: list[str] = []
    monkeypatch.setattr(progress, "sink", said.append)
    monkeypatch.setenv("MEDPUBSUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STANDIN_CLUSTERS", "other\nmedpubsub")
    monkeypatch.setenv("STANDIN_KIND_VERSION", "kind v0.33.0 go1.25.1 linux/amd64")
    monkeypatch.setenv("STANDIN_NODE_IMAGE", "kindest/node:v1.37.0@sha256:" + "a" * 64)
    backend = KindBackend(PROJECT, "medpubsub")
    backend.up()
    backend.down()
    assert not backend.created
    assert recorder.calls() == [
        ["kind", "version"],
        ["kind", "get", "clusters"],
        ["kind", "get", "kubeconfig", "--name", "medpubsub"],
        ["docker", "port", "medpubsub-control-plane", "32100/tcp"],
        ["docker", "port", "medpubsub-control-plane", "32101/tcp"],
        kind.node_image_command("medpubsub"),
    ]
    assert any("kind v0.33.0 is installed" in line for line in said)
    assert any("runs the node image kindest/node:v1.37.0" in line for line in said)


@pytest.mark.slow  # waits out a timeout of seconds by design
def test_a_hung_create_is_stopped_reports_the_nodes_and_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.setenv("MEDPUBSUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STANDIN_HANG", "1")
    monkeypatch.setenv("STANDIN_NODES", "medpubsub-control-plane: Up 10 minutes")
    monkeypatch.setattr(kind, "CREATE_TIMEOUT_S", 3.0)
    backend = KindBackend(PROJECT, "medpubsub")
    with pytest.raises(PlatformError) as raised:
        backend.up()
    message = str(raised.value)
    assert "did not finish within 3 s and was stopped" in message
    assert "its last output was '\u2713 Preparing nodes'" in message
    assert "its node containers: medpubsub-control-plane: Up 10 minutes" in message
    assert backend.created  # what the create left is ours to delete
    backend.down()
    kubeconfig = tmp_path / "cache" / "kind" / "medpubsub" / "kubeconfig"
    assert recorder.calls()[-2:] == [
        kind.node_containers_command("medpubsub"),
        kind.delete_command("kind", "medpubsub", kubeconfig),
    ]


# ---------------------------------------------------------------------- timeouts


def hanging_tool(tmp_path: Path) -> Path:
    """A `kind` that prints its progress, starts a child, and never finishes."""
    script = tmp_path / "kind"
    script.write_text(
        "#!/bin/sh\n"
        'echo $$ > "$0.pid"\n'
        'sleep 300 & echo $! > "$0.child"\n'
        "echo ' • Ensuring node image (kindest/node:v1.33.1)'\n"
        "echo ' ✓ Preparing nodes'\n"
        "echo\n"
        "wait\n"
    )
    script.chmod(0o755)
    return script


def gone(pid: int) -> bool:
    return not processes.is_alive(pid)


@pytest.mark.slow  # waits out a timeout of seconds by design
def test_a_hung_command_is_stopped_with_its_children_and_says_what_was_seen(
    tmp_path: Path,
) -> None:
    tool = hanging_tool(tmp_path)
    log = tmp_path / "logs" / "kind-create.log"
    with pytest.raises(PlatformError) as raised:
        run_watched(
            [str(tool), "create", "cluster"],
            timeout_s=3,
            log=log,
            seen=lambda: "its node containers: medpubsub-control-plane: Up 2 minutes",
            grace_s=2,
        )
    message = str(raised.value)
    assert f"`{tool} create cluster` did not finish within 3 s" in message
    assert "its last output was '✓ Preparing nodes'" in message
    assert "its node containers: medpubsub-control-plane: Up 2 minutes" in message
    assert f"(full output: {log})" in message
    assert "\n" not in message  # one sentence
    for pid_file in (tool.with_suffix(".pid"), tmp_path / "kind.child"):
        # SIGKILL was sent; the kernel may take a moment to finish the process off.
        wait_for(partial(gone, int(pid_file.read_text())), 10, f"{pid_file.name} to end")


@pytest.mark.slow  # waits out a timeout of seconds by design
def test_what_was_seen_cannot_hide_the_timeout(tmp_path: Path) -> None:
    tool = hanging_tool(tmp_path)

    def docker_is_gone() -> str:
        raise PlatformError("docker did not answer")

    with pytest.raises(PlatformError, match=r"within 2 s .*could not look: docker did not answer"):
        run_watched([str(tool)], timeout_s=2, log=tmp_path / "log", seen=docker_is_gone, grace_s=1)


def test_a_failing_command_quotes_its_tail_and_a_passing_one_keeps_its_log(
    tmp_path: Path,
) -> None:
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'ERROR: failed to create cluster: port is taken'\nexit 1\n")
    failing.chmod(0o755)
    log = tmp_path / "failing.log"
    with pytest.raises(PlatformError, match="exit status 1") as raised:
        run_watched([str(failing)], timeout_s=30, log=log)
    assert "port is taken" in str(raised.value)
    passing = tmp_path / "passing"
    passing.write_text("#!/bin/sh\necho 'Deleted nodes: [\"medpubsub-control-plane\"]'\n")
    passing.chmod(0o755)
    log.write_text("an earlier run's output\n")
    run_watched([str(passing)], timeout_s=30, log=log)
    assert log.read_text() == 'Deleted nodes: ["medpubsub-control-plane"]\n'


def test_a_missing_tool_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="is not installed"):
        run_watched([str(tmp_path / "no-kind"), "version"], timeout_s=5, log=tmp_path / "log")


@pytest.mark.parametrize(
    ("output", "last"),
    [("a\n b \n\n", "b"), ("", "nothing"), ("\n  \n", "nothing"), ("only", "only")],
)
def test_last_line(output: str, last: str) -> None:
    assert last_line(output) == last
