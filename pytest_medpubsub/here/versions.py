"""What the cluster is built from: pinned versions, and the images kubeadm asks for.

The tags under registry.k8s.io are the ones kubeadm v1.34 puts into its static pods and CoreDNS
Deployment; they are only ever local (nothing is pulled), so building them under those names
lets kubeadm run unchanged. KEDA's three images (operator, metrics API server, admission webhooks)
get names of our own instead: the harness sets them in KEDA's manifest, so they need not pose as
the upstream ones.
"""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES = "v1.34.4"
ETCD = "3.6.5"
# kubeadm appends "-0" to the etcd version it pins for a Kubernetes minor.
ETCD_IMAGE_TAG = f"{ETCD}-0"
COREDNS = "v1.14.7"
PAUSE = "3.10.1"
KEDA = "2.20.2"
# KEDA 2.20's go.mod asks for Go 1.26; Kubernetes 1.34 needs 1.24.
GO_MINIMUM = (1, 26)

REGISTRY = "registry.k8s.io"
KEDA_IMAGE = f"medpubsub.local/keda-operator:{KEDA}"
KEDA_METRICS_IMAGE = f"medpubsub.local/keda-metrics-apiserver:{KEDA}"
KEDA_WEBHOOKS_IMAGE = f"medpubsub.local/keda-admission-webhooks:{KEDA}"

# Debian packages the cluster needs at run time, each with what shows it is there: a command on
# PATH or a file. A tool found means its package (or an equivalent, such as a runner's own Docker
# engine, which docker.io would conflict with) is installed, so nothing is installed over it.
DEBIAN_PACKAGES = {
    "docker.io": "dockerd",
    "containerd": "containerd",  # ctr comes with it
    "runc": "runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "conntrack": "conntrack",
    "iptables": "iptables",
    "iproute2": "ip",
    "ethtool": "ethtool",
    "socat": "socat",
    "debootstrap": "debootstrap",
}


@dataclass(frozen=True)
class Image:
    """One image built `FROM scratch` around one binary of a built component."""

    tag: str
    component: str  # the Go component (gobuild.COMPONENTS) whose binary it carries
    binary: str
    # Where the binary goes: control-plane images are run by command name (PATH), CoreDNS and
    # the KEDA operator by their absolute entrypoint.
    path: str
    entrypoint: bool
    user: str | None = None  # None: root (CoreDNS binds :53)
    ca_bundle: bool = False  # KEDA talks TLS to its own API server clients; needs CAs

    @property
    def archive_name(self) -> str:
        """A file name for the image's `docker save` archive (tag without the registry)."""
        return self.tag.rsplit("/", 1)[-1].replace(":", "-") + ".tar"


def control_plane_images() -> tuple[Image, ...]:
    """The images `kubeadm config images list` names for KUBERNETES (checked by a unit test)."""
    return (
        _control_plane("kube-apiserver"),
        _control_plane("kube-controller-manager"),
        _control_plane("kube-scheduler"),
        _control_plane("kube-proxy"),
        Image(f"{REGISTRY}/coredns/coredns:{COREDNS}", "coredns", "coredns", "/coredns", True),
        Image(f"{REGISTRY}/pause:{PAUSE}", "pause", "pause", "/pause", True),
        Image(f"{REGISTRY}/etcd:{ETCD_IMAGE_TAG}", "etcd", "server", "/usr/local/bin/etcd", False),
    )


def keda_image() -> Image:
    return Image(KEDA_IMAGE, "keda", "operator", "/keda", True, "65532:65532", True)


def keda_images() -> tuple[Image, ...]:
    """KEDA's three Deployments' images, each binary where KEDA's own Dockerfiles put it (the
    release manifest runs them by that path in `command`)."""
    return (
        keda_image(),
        Image(KEDA_METRICS_IMAGE, "keda", "adapter", "/keda-adapter", True, "65532:65532", True),
        Image(
            KEDA_WEBHOOKS_IMAGE,
            "keda",
            "webhooks",
            "/keda-admission-webhooks",
            True,
            "65532:65532",
            True,
        ),
    )


def all_images() -> tuple[Image, ...]:
    return (*control_plane_images(), *keda_images())


def _control_plane(name: str) -> Image:
    return Image(
        f"{REGISTRY}/{name}:{KUBERNETES}", "kubernetes", name, f"/usr/local/bin/{name}", False
    )
