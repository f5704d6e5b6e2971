"""The cluster's configuration files, rendered from a few facts: what kubeadm, containerd, the
CNI plugins and kube-proxy get, and the reasons they differ from the defaults."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from pytest_medpubsub.here import configs, versions

FACTS = configs.ClusterFacts(
    node="medpubsub-here",
    address="192.0.2.7",
    containerd_socket=Path("/run/medpubsub-here/containerd.sock"),
    containerd_root=Path("/cache/here/run/containerd"),
    containerd_state=Path("/run/medpubsub-here/containerd"),
    cni_conf_dir=Path("/cache/here/run/cni"),
    cni_bin_dir=Path("/usr/lib/cni"),
    pki=Path("/cache/here/run/pki"),
    etcd_data=Path("/cache/here/run/etcd"),
    kube_proxy_kubeconfig=Path("/cache/here/run/kube-proxy.conf"),
)


def test_containerd_runs_beside_dockers_with_the_cri_it_needs_here() -> None:
    config = tomllib.loads(configs.containerd_config(FACTS))
    assert config["grpc"]["address"] == str(FACTS.containerd_socket)
    assert config["root"] == str(FACTS.containerd_root)
    assert config["state"] == str(FACTS.containerd_state)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # root lacks CAP_SYS_RESOURCE here
    assert cri["sandbox_image"] == f"registry.k8s.io/pause:{versions.PAUSE}"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": str(FACTS.cni_conf_dir)}


def test_pods_get_addresses_from_the_bridge_inside_the_pod_cidr() -> None:
    config = json.loads(configs.cni_conflist())
    bridge, portmap = config["plugins"]
    assert bridge["bridge"] == configs.BRIDGE == "cni0"
    assert bridge["ipMasq"] is True
    assert bridge["ipam"]["ranges"] == [[{"subnet": configs.NODE_POD_CIDR}]]
    assert configs.NODE_POD_CIDR.startswith(configs.POD_CIDR.split("0.0/")[0])
    assert portmap["type"] == "portmap"


@pytest.fixture(scope="module")
def kubeadm() -> dict[str, dict[str, object]]:
    documents = list(yaml.safe_load_all(configs.kubeadm_config(FACTS)))
    return {str(document["kind"]): document for document in documents}


def test_kubeadm_advertises_the_hosts_address_and_uses_our_containerd(
    kubeadm: dict[str, dict[str, object]],
) -> None:
    init = kubeadm["InitConfiguration"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.0.2.7", "bindPort": 6443}
    registration = init["nodeRegistration"]
    assert isinstance(registration, dict)
    assert registration["criSocket"] == "unix:///run/medpubsub-here/containerd.sock"
    assert registration["imagePullPolicy"] == "Never"
    assert registration["taints"] == []


def test_kubeadm_builds_the_pinned_version_with_our_images_and_paths(
    kubeadm: dict[str, dict[str, object]],
) -> None:
    cluster = kubeadm["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == versions.KUBERNETES
    assert cluster["certificatesDir"] == str(FACTS.pki)
    assert cluster["etcd"] == {"local": {"dataDir": str(FACTS.etcd_data)}}
    assert cluster["dns"] == {
        "imageRepository": "registry.k8s.io/coredns",
        "imageTag": versions.COREDNS,
    }
    assert cluster["networking"] == {
        "podSubnet": configs.POD_CIDR,
        "serviceSubnet": configs.SERVICE_CIDR,
        "dnsDomain": "cluster.local",
    }


def test_the_kubelet_runs_on_cgroup_v1_without_systemd_or_image_gc(
    kubeadm: dict[str, dict[str, object]],
) -> None:
    kubelet = kubeadm["KubeletConfiguration"]
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["failCgroupV1"] is False
    assert kubelet["imageGCHighThresholdPercent"] == 100


def test_kube_proxy_runs_on_the_host_in_iptables_mode() -> None:
    config = yaml.safe_load(configs.kube_proxy_config(FACTS))
    assert config["mode"] == "iptables"
    assert config["clusterCIDR"] == configs.POD_CIDR
    assert config["hostnameOverride"] == FACTS.node
    assert config["clientConnection"]["kubeconfig"] == str(FACTS.kube_proxy_kubeconfig)
