"""The configuration files of the cluster, rendered from a few facts (pure, unit-tested).

Only what differs from the defaults is set, each with its reason:
- containerd: its own root, state and socket next to Docker's, and `restrict_oom_score_adj`
  because root here lacks CAP_SYS_RESOURCE (without it every sandbox fails to start);
- kubelet: cgroupfs and cgroup v1 (the VM's init holds v1; there is no systemd), no image
  garbage collection (images are imported, never pulled back) and eviction only near full disks;
- kubeadm: the addresses and paths, and no image pulls;
- kube-proxy: iptables mode, run as a host process with a kubeconfig of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.here import versions

POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"  # the single node's share, handed out by host-local IPAM
SERVICE_CIDR = "10.96.0.0/12"
CLUSTER_CIDRS = (SERVICE_CIDR, POD_CIDR)
BRIDGE = "cni0"
API_PORT = 6443


@dataclass(frozen=True)
class ClusterFacts:
    node: str
    address: str  # the host's own address: the API server and the broker are reached on it
    containerd_socket: Path
    containerd_root: Path
    containerd_state: Path
    cni_conf_dir: Path
    cni_bin_dir: Path
    pki: Path
    etcd_data: Path
    kube_proxy_kubeconfig: Path


def containerd_config(facts: ClusterFacts) -> str:
    sandbox = f"{versions.REGISTRY}/pause:{versions.PAUSE}"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{facts.containerd_root}"
state = "{facts.containerd_state}"

[grpc]
  address = "{facts.containerd_socket}"

[{cri}]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{facts.cni_bin_dir}"
  conf_dir = "{facts.cni_conf_dir}"
"""


def cni_conflist() -> str:
    """A bridge with host-local addresses, masquerading off-node traffic; portmap for hostPort."""
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": NODE_POD_CIDR}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    config = {"cniVersion": "1.0.0", "name": "medpubsub-here", "plugins": [bridge, portmap]}
    return json.dumps(config, indent=2) + "\n"


def kubeadm_config(facts: ClusterFacts) -> str:
    init: dict[str, Any] = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": facts.address, "bindPort": API_PORT},
        "nodeRegistration": {
            "name": facts.node,
            "criSocket": f"unix://{facts.containerd_socket}",
            "imagePullPolicy": "Never",
            "taints": [],  # one node: the workloads run on the control plane
        },
    }
    cluster: dict[str, Any] = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": versions.KUBERNETES,
        "clusterName": facts.node,
        "certificatesDir": str(facts.pki),
        "imageRepository": versions.REGISTRY,
        "networking": {
            "podSubnet": POD_CIDR,
            "serviceSubnet": SERVICE_CIDR,
            "dnsDomain": "cluster.local",
        },
        "etcd": {"local": {"dataDir": str(facts.etcd_data)}},
        "dns": {"imageRepository": f"{versions.REGISTRY}/coredns", "imageTag": versions.COREDNS},
    }
    kubelet: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "failCgroupV1": False,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "memory.available": "100Mi",
        },
    }
    return yaml.safe_dump_all([init, cluster, kubelet], sort_keys=False)


def kube_proxy_config(facts: ClusterFacts) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(facts.kube_proxy_kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": facts.node,
        # kube-proxy would otherwise raise the host's nf_conntrack_max: the host is not the
        # cluster's to tune, and 0 leaves the kernel's value alone.
        "conntrack": {"maxPerCore": 0},
    }
    return yaml.safe_dump(config, sort_keys=False)
