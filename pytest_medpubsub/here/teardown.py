"""`down` and `check-clean`: undo what `up` did, then prove nothing of it is left.

`down` stops only the pids `up` recorded (SIGTERM, then SIGKILL), lets kubeadm and kube-proxy
undo their own changes, then removes what remains by pattern: our iptables rules and the
KUBE-*/CNI-* chains, cni0 and its veths, the mounts under the cluster's paths, the host
directories kubeadm and the kubelet use, and the run state. The build cache stays.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_medpubsub import processes, progress
from pytest_medpubsub.here import gobuild, host, residue
from pytest_medpubsub.here.commands import HereError, run
from pytest_medpubsub.here.configs import BRIDGE
from pytest_medpubsub.here.layout import HOST_DIRS, NETNS_DIR, Layout
from pytest_medpubsub.here.state import ClusterState

# Stopped first to last: nothing restarts what was stopped before it.
STOP_ORDER = ("kubelet-supervisor", "kube-proxy", "containerd")
SUPERVISOR = "pytest_medpubsub.here.supervise"


def markers(layout: Layout) -> list[str]:
    """Command-line fragments that make a process ours: containerd and shims name our socket
    folder, the supervisor its module, the host-process binaries the cache's bin folder."""
    return [str(layout.sockets), str(layout.root / "bin"), SUPERVISOR]


def mount_roots(layout: Layout) -> list[Path]:
    return [Path("/var/lib/kubelet"), NETNS_DIR, layout.sockets, layout.run]


def leftovers(layout: Layout) -> list[str]:
    """Everything a cluster of ours would leave behind, one line each ("" list when clean)."""
    found = [
        f"process {pid}: {' '.join(argv)[:160]}"
        for pid, argv in host.cluster_processes(markers(layout))
    ]
    for family in host.FAMILIES:
        found += residue.iptables_leftovers(host.iptables_save(family), family)
    found += [
        f"mount {point}" for point in residue.mount_leftovers(host.mounts(), mount_roots(layout))
    ]
    found += [f"interface {name}" for name in residue.link_leftovers(host.links())]
    found += [
        f"directory {path}" for path in (*HOST_DIRS, layout.run, layout.sockets) if path.exists()
    ]
    found += [f"network namespace {path}" for path in _cni_netns()]
    return found


def down(layout: Layout) -> float:
    started = time.monotonic()
    state = ClusterState.load(layout.state_file) or ClusterState()
    with progress.step("stopping the kubelet and kube-proxy"):
        for role in STOP_ORDER[:2]:
            if role in state.pids:
                processes.stop_pid(state.pids[role])
        _stop_strays(layout)
    _kubeadm_reset(layout)
    _kube_proxy_cleanup(layout)
    with progress.step("stopping the containers, their shims and the cluster's containerd"):
        _stop_containers(layout)
        if "containerd" in state.pids:
            processes.stop_pid(state.pids["containerd"])
        _stop_shims(layout)
    with progress.step("removing iptables rules and chains, cni0, mounts and directories"):
        problems = _clean_host(layout)
    if state.dockerd_pid is not None:
        with progress.step(f"stopping the dockerd `up` started (pid {state.dockerd_pid})"):
            processes.stop_pid(state.dockerd_pid, grace_s=30)
    host.remove_tree(layout.run)
    host.remove_tree(layout.sockets)
    for problem in problems:
        progress.say(f"warning: {problem}")
    return time.monotonic() - started


def _kubeadm_reset(layout: Layout) -> None:
    kubeadm = gobuild.binary(layout, "kubernetes", "kubeadm")
    if not kubeadm.is_file() or not Path("/etc/kubernetes").exists():
        return
    args = [str(kubeadm), "reset", "-f"]
    if host.socket_answers(layout.containerd_socket):
        args.append(f"--cri-socket=unix://{layout.containerd_socket}")
    with progress.step("kubeadm reset"):
        result = run(args, 180, check=False)
    if result.returncode != 0:
        progress.say(f"kubeadm reset failed, cleaning up by hand: {result.stderr.strip()[-300:]}")


def _kube_proxy_cleanup(layout: Layout) -> None:
    proxy = gobuild.binary(layout, "kubernetes", "kube-proxy")
    if proxy.is_file():
        with progress.step("kube-proxy --cleanup"):
            run([str(proxy), "--cleanup"], 60, check=False)


def _stop_containers(layout: Layout) -> None:
    """Kill every task kubeadm reset did not (it removes pod sandboxes; a task may linger)."""
    socket = layout.containerd_socket
    if not host.socket_answers(socket):
        return
    ctr = ["ctr", "-a", str(socket), "-n", "k8s.io"]
    tasks = run([*ctr, "tasks", "ls", "-q"], 30, check=False).stdout.split()
    for task in tasks:
        run([*ctr, "tasks", "kill", "-s", "SIGKILL", task], 30, check=False)
    deadline = time.monotonic() + 20
    while tasks and time.monotonic() < deadline:
        tasks = [
            line.split()[0]
            for line in run([*ctr, "tasks", "ls"], 30, check=False).stdout.splitlines()[1:]
            if "RUNNING" in line
        ]
        time.sleep(0.5)
    for task in run([*ctr, "tasks", "ls", "-q"], 30, check=False).stdout.split():
        run([*ctr, "tasks", "delete", "-f", task], 30, check=False)


def _stop_shims(layout: Layout) -> None:
    """The shims of our containerd outlive it by design; they name its socket folder. Their
    containers go first: a container whose shim is gone would run on, orphaned."""
    parent_of = host.parents()
    for pid, argv in host.processes():
        if "containerd-shim" in argv[0] and str(layout.sockets) in " ".join(argv):
            for child in reversed(host.descendants(pid, parent_of)):
                processes.stop_pid(child, grace_s=2)
            processes.stop_pid(pid, grace_s=5)


def _stop_strays(layout: Layout) -> None:
    """Processes running our own binaries or the supervisor that `state.json` does not name
    (a supervisor killed hard leaves its kubelet behind; a lost state file forgets all)."""
    ours = str(layout.root / "bin")
    for pid, argv in host.processes():
        if argv[0].startswith(ours) or (SUPERVISOR in argv and pid != os.getpid()):
            processes.stop_pid(pid)


def _clean_host(layout: Layout) -> list[str]:
    problems = []
    for family in host.FAMILIES:
        saved = host.iptables_save(family)
        if saved:
            problems += host.run_iptables(family, residue.iptables_cleanup(saved))
    for name in residue.link_leftovers(host.links()):
        if name != BRIDGE:
            run(["ip", "link", "delete", name], 30, check=False)
    if BRIDGE in residue.link_leftovers(host.links()):
        run(["ip", "link", "delete", BRIDGE], 30, check=False)
    for point in residue.mount_leftovers(host.mounts(), mount_roots(layout)):
        host.unmount(point)
    for path in _cni_netns():
        host.remove_file(path)
    if NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        NETNS_DIR.rmdir()
    for path in HOST_DIRS:
        try:
            host.remove_tree(path)
        except HereError as error:
            problems.append(str(error))
    return problems


def _cni_netns() -> list[Path]:
    """The network namespaces the CNI plugins created for pods (named cni-<uuid>)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(path for path in NETNS_DIR.iterdir() if path.name.startswith("cni-"))
