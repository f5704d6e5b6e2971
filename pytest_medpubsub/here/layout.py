"""Where everything lives: the build cache (kept by `down`) and the run state (removed by it).

- `<cache>/here/src/<component>-<version>/`: the Go wrapper module, resolved (go.sum);
- `<cache>/here/bin/<component>-<version>/`: its binaries, plus `build.json` once complete;
- `<cache>/here/images/<version-key>/`: `docker save` archives of the images;
- `<cache>/here/keda-<version>.yaml`: the KEDA manifest for `--medpubsub-keda-manifest`;
- `<cache>/here/run/`: one cluster's state (configs, certificates, etcd, containerd's images,
  logs, `state.json`, and `kubeconfig`, the stable path to hand to kubectl and the harness);
- `/run/medpubsub-here/`: containerd's sockets and state (a Unix socket path must stay short).

The host paths kubeadm and the kubelet use (/etc/kubernetes, /var/lib/kubelet, ...) are fixed
by them; `down` removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_medpubsub.kafka.jars import cache_dir

NAME = "medpubsub-here"
# Host paths owned by kubeadm, the kubelet and CNI: created by `up`, removed by `down`.
HOST_DIRS = (
    Path("/etc/kubernetes"),
    Path("/var/lib/kubelet"),
    Path("/var/log/pods"),
    Path("/var/log/containers"),
    Path("/var/lib/cni"),
)
NETNS_DIR = Path("/run/netns")
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class Layout:
    root: Path
    sockets: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(root=cache_dir() / "here", sockets=Path("/run") / NAME)

    def src(self, component: str, version: str) -> Path:
        return self.root / "src" / f"{component}-{version}"

    def bin(self, component: str, version: str) -> Path:
        return self.root / "bin" / f"{component}-{version}"

    def images(self, key: str) -> Path:
        return self.root / "images" / key

    def keda_manifest(self, version: str) -> Path:
        return self.root / f"keda-{version}-config-default.yaml"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        return self.run / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.run / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    @property
    def containerd_root(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.sockets / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.sockets / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni"

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.run / "etcd"
