"""`up`: from a machine with Debian's packages and Go to a Ready single-node cluster.

The order matters: containerd and the images first (kubeadm's static pods use them at once),
the kubelet's supervisor before kubeadm (kubeadm waits for the kubelet it expects systemd to
start), kube-proxy after (it needs the API server and a kubeconfig kubeadm signs).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_medpubsub import processes, progress
from pytest_medpubsub.here import (
    configs,
    docker,
    gobuild,
    host,
    hostnet,
    images,
    keda,
    kube,
    packages,
    storage,
    teardown,
    versions,
)
from pytest_medpubsub.here.commands import HereError, run, run_logged
from pytest_medpubsub.here.layout import NAME, Layout
from pytest_medpubsub.here.state import ClusterState
from pytest_medpubsub.here.waits import wait_step

KUBELET_CONFIG = Path("/var/lib/kubelet/config.yaml")
KUBELET_FLAGS = Path("/var/lib/kubelet/kubeadm-flags.env")
ADMIN_CONF = Path("/etc/kubernetes/admin.conf")
KUBEADM_TIMEOUT_S = 600.0
NODE_READY_TIMEOUT_S = 180.0
COREDNS_TIMEOUT_S = 180.0
# kubeadm checks what a systemd host has; here there is none (it warns and carries on), and
# Swap/SystemVerification only report the VM's cgroup v1.
PREFLIGHT_IGNORED = "SystemVerification,Swap,Service-Kubelet"
SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}


@dataclass
class UpResult:
    state: ClusterState
    reused: bool
    seconds: float
    built: dict[str, float] = field(default_factory=dict)


def up(layout: Layout) -> UpResult:
    started = time.monotonic()
    existing = ClusterState.load(layout.state_file)
    if existing is not None and is_healthy(layout, existing):
        progress.say(f"reusing the running cluster ({kube.nodes_summary(layout.kubeconfig)})")
        return UpResult(existing, True, time.monotonic() - started)
    if existing is not None or teardown.leftovers(layout):
        progress.say("a cluster of ours is half there; removing it first")
        teardown.down(layout)
    layout.logs.mkdir(parents=True, exist_ok=True)
    packages.ensure(versions.DEBIAN_PACKAGES, layout.logs / "apt.log")
    state = ClusterState(containerd_socket=str(layout.containerd_socket))
    try:
        with progress.step("checking that Docker answers (starting dockerd if needed)"):
            state.dockerd_pid = docker.ensure_running(layout.logs / "dockerd.log")
        state.save(layout.state_file)
        built = build(layout)
        state.keda_manifest = str(keda.ensure_manifest(layout.keda_manifest(versions.KEDA)))
        start(layout, state)
    except BaseException:
        state.save(layout.state_file)  # `down` (or the next `up`) undoes what was started
        raise
    return UpResult(state, False, time.monotonic() - started, built)


def build(layout: Layout) -> dict[str, float]:
    """Every binary and image, from the cache when it is there; seconds spent per component."""
    built = gobuild.ensure_all(layout)
    for image in versions.all_images():
        started = time.monotonic()
        if images.ensure_archive(layout, image):
            built[f"image {image.tag}"] = time.monotonic() - started
    return built


def start(layout: Layout, state: ClusterState) -> None:
    facts = _facts(layout)
    state.uplink = _uplink()
    state.address = facts.address
    state.save(layout.state_file)
    _write_configs(layout, facts)
    _sysctls()
    _start_containerd(layout, state)
    with progress.step("importing the cluster's images into its containerd"):
        images.import_archives(
            layout.containerd_socket,
            [images.archive(layout, image) for image in versions.all_images()],
        )
    _add_rules(state.uplink)
    _start_kubelet(layout, state)
    _kubeadm_init(layout)
    shutil.copy2(ADMIN_CONF, layout.kubeconfig)
    layout.kubeconfig.chmod(0o600)
    state.kubeconfig = str(layout.kubeconfig)
    state.save(layout.state_file)
    _start_kube_proxy(layout, state)
    wait_step(
        "the node to be Ready",
        lambda: kube.nodes_summary(layout.kubeconfig),
        lambda summary: summary.endswith(" Ready") and "NotReady" not in summary,
        NODE_READY_TIMEOUT_S,
        hint=f"kubelet log: {layout.logs / 'kubelet.log'}",
    )
    wait_step(
        "CoreDNS to be available",
        lambda: kube.get_json(layout.kubeconfig, "-n", "kube-system", "deployment", "coredns"),
        kube.deployment_available,
        COREDNS_TIMEOUT_S,
    )
    # One node: a second CoreDNS replica only takes 100m of the 2 CPUs the scheduler hands out.
    kube.kubectl(
        layout.kubeconfig, "-n", "kube-system", "scale", "deployment/coredns", "--replicas=1"
    )
    with progress.step("a default StorageClass with local volumes (Strimzi's Kafka claims one)"):
        storage.ensure(layout)
    state.ready = True
    state.save(layout.state_file)


def is_healthy(layout: Layout, state: ClusterState) -> bool:
    """Everything we started still runs, and the API server says the node is Ready."""
    if not state.ready or not all(processes.is_alive(pid) for pid in state.pids.values()):
        return False
    if not host.socket_answers(Path(state.containerd_socket)):
        return False
    try:
        return kube.nodes_summary(layout.kubeconfig).endswith(" Ready")
    except HereError:
        return False


def _facts(layout: Layout) -> configs.ClusterFacts:
    uplink = _uplink()
    address = hostnet.first_address(
        run(["ip", "-o", "-4", "addr", "show", "dev", uplink], 30).stdout
    )
    if address is None:
        raise HereError(f"the uplink {uplink} has no IPv4 address for the API server to use")
    return configs.ClusterFacts(
        node=NAME,
        address=address,
        containerd_socket=layout.containerd_socket,
        containerd_root=layout.containerd_root,
        containerd_state=layout.containerd_state,
        cni_conf_dir=layout.cni_conf_dir,
        cni_bin_dir=Path("/usr/lib/cni"),
        pki=layout.pki,
        etcd_data=layout.etcd_data,
        kube_proxy_kubeconfig=layout.run / "kube-proxy.conf",
    )


def _uplink() -> str:
    device = hostnet.default_route_device(
        run(["ip", "-o", "-4", "route", "show", "default"], 30).stdout
    )
    if device is None:
        raise HereError("this machine has no default route, so no uplink to guard")
    return device


def _write_configs(layout: Layout, facts: configs.ClusterFacts) -> None:
    layout.run.mkdir(parents=True, exist_ok=True)
    layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (layout.run / "containerd.toml").write_text(configs.containerd_config(facts))
    (layout.cni_conf_dir / "10-medpubsub-here.conflist").write_text(configs.cni_conflist())
    (layout.run / "kubeadm.yaml").write_text(configs.kubeadm_config(facts))
    (layout.run / "kube-proxy.yaml").write_text(configs.kube_proxy_config(facts))


def _sysctls() -> None:
    """Routing between pods and the bridge going through iptables; both are usually set."""
    for key, value in SYSCTLS.items():
        current = run(["sysctl", "-n", key], 10, check=False).stdout.strip()
        if current != value:
            progress.say(f"setting {key}={value} (was {current or 'unset'})")
            run(["sysctl", "-w", f"{key}={value}"], 10)


def _spawn(layout: Layout, state: ClusterState, role: str, args: list[str]) -> None:
    process = processes.spawn(args, log_path=layout.logs / f"{role}.log")
    state.pids[role] = process.pid
    state.save(layout.state_file)


def _start_containerd(layout: Layout, state: ClusterState) -> None:
    layout.sockets.mkdir(parents=True, exist_ok=True)
    _spawn(
        layout, state, "containerd", ["containerd", "--config", str(layout.run / "containerd.toml")]
    )
    pid = state.pids["containerd"]
    wait_step(
        f"the cluster's containerd (pid {pid}) to answer on {layout.containerd_socket}",
        lambda: processes.is_alive(pid) and host.socket_answers(layout.containerd_socket),
        lambda ok: ok,
        60,
        hint=f"log: {layout.logs / 'containerd.log'}",
    )


def _add_rules(uplink: str) -> None:
    rules = hostnet.guard_rules(uplink)
    if host.has_chain("filter", "DOCKER-USER"):
        rules += hostnet.docker_user_rules()
    for rule in rules:
        host.ensure_rule(rule)


def _start_kubelet(layout: Layout, state: ClusterState) -> None:
    kubelet = gobuild.binary(layout, "kubernetes", "kubelet")
    _spawn(
        layout,
        state,
        "kubelet-supervisor",
        [
            shutil.which("python3") or "python3",
            "-m",
            "pytest_medpubsub.here.supervise",
            "--wait-for",
            str(KUBELET_CONFIG),
            "--env-file",
            str(KUBELET_FLAGS),
            "--",
            str(kubelet),
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            f"--config={KUBELET_CONFIG}",
        ],
    )


def _kubeadm_init(layout: Layout) -> None:
    kubeadm = gobuild.binary(layout, "kubernetes", "kubeadm")
    log = layout.logs / "kubeadm-init.log"
    with progress.step(f"kubeadm init (log: {log})"):
        run_logged(
            [
                str(kubeadm),
                "init",
                f"--config={layout.run / 'kubeadm.yaml'}",
                "--skip-phases=addon/kube-proxy",
                f"--ignore-preflight-errors={PREFLIGHT_IGNORED}",
            ],
            KUBEADM_TIMEOUT_S,
            log,
            env=kubernetes_path(layout),
        )


def kubernetes_path(layout: Layout) -> dict[str, str]:
    """The environment with the built Kubernetes commands first on PATH: kubeadm runs
    `kubelet --version` in its preflight checks."""
    bin_dir = gobuild.binary(layout, "kubernetes", "kubelet").parent
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def _start_kube_proxy(layout: Layout, state: ClusterState) -> None:
    kubeadm = gobuild.binary(layout, "kubernetes", "kubeadm")
    conf = run(
        [
            str(kubeadm),
            "kubeconfig",
            "user",
            "--client-name=system:kube-proxy",
            f"--config={layout.run / 'kubeadm.yaml'}",
        ],
        60,
    ).stdout
    target = layout.run / "kube-proxy.conf"
    target.write_text(conf)
    target.chmod(0o600)
    proxy = gobuild.binary(layout, "kubernetes", "kube-proxy")
    _spawn(layout, state, "kube-proxy", [str(proxy), f"--config={layout.run / 'kube-proxy.yaml'}"])
