"""What `make cluster-here` builds and how: versions pinned, the -X flags that make kubeadm
know its own version, the images kubeadm asks for, their Dockerfiles, the Debian packages."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from pytest_medpubsub.here import gobuild, images, packages, supervise, versions
from pytest_medpubsub.here.layout import Layout

# `kubeadm config images list --kubernetes-version v1.34.4 --config` with our CoreDNS tag.
KUBEADM_LISTS = {
    "registry.k8s.io/kube-apiserver:v1.34.4",
    "registry.k8s.io/kube-controller-manager:v1.34.4",
    "registry.k8s.io/kube-scheduler:v1.34.4",
    "registry.k8s.io/kube-proxy:v1.34.4",
    "registry.k8s.io/coredns/coredns:v1.14.7",
    "registry.k8s.io/pause:3.10.1",
    "registry.k8s.io/etcd:3.6.5-0",
}


def test_the_control_plane_images_are_the_ones_kubeadm_asks_for() -> None:
    assert {image.tag for image in versions.control_plane_images()} == KUBEADM_LISTS


def test_the_built_kubeadm_asks_for_those_images_when_it_is_cached(tmp_path: Path) -> None:
    kubeadm = gobuild.binary(Layout.default(), "kubernetes", "kubeadm")
    if not kubeadm.is_file():
        pytest.skip("kubeadm has not been built on this machine (make cluster-here builds it)")
    config = tmp_path / "kubeadm.yaml"
    config.write_text(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
        f"kubernetesVersion: {versions.KUBERNETES}\n"
        f"dns:\n  imageRepository: registry.k8s.io/coredns\n  imageTag: {versions.COREDNS}\n"
    )
    listed = subprocess.run(
        [str(kubeadm), "config", "images", "list", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert set(listed) == KUBEADM_LISTS


def test_the_keda_operator_image_has_a_name_of_our_own_and_runs_unprivileged() -> None:
    keda = versions.keda_image()
    assert keda.tag == "medpubsub.local/keda-operator:2.20.2"
    assert keda.user == "65532:65532"
    assert keda.ca_bundle


def test_kubernetes_is_stamped_with_its_version_in_both_version_packages() -> None:
    flags = gobuild.kubernetes_ldflags("v1.34.4")
    assert flags.startswith("all= ")
    words = shlex.split(flags.removeprefix("all="))
    stamped = dict(word.split("=", 1) for word in words[1::2] if "=" in word)
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert stamped[f"{package}.gitVersion"] == "v1.34.4"
        assert stamped[f"{package}.gitMajor"] == "1"
        assert stamped[f"{package}.gitMinor"] == "34"
        assert stamped[f"{package}.gitTreeState"] == "clean"
    assert words[-2:] == ["-s", "-w"]


def test_every_component_is_built_statically_and_niced_into_a_folder() -> None:
    spec = gobuild.COMPONENTS["kubernetes"]
    args = gobuild.build_args(spec, Path("/out"))
    assert args[:4] == ["nice", "-n", "10", "go"]
    assert args[args.index("-tags") + 1] == "selinux,notest,grpcnotrace"
    assert args[args.index("-o") + 1] == "/out/"
    assert args[-6:] == [f"k8s.io/kubernetes/cmd/{name}" for name in gobuild.KUBERNETES_COMMANDS]
    assert gobuild.go_env()["CGO_ENABLED"] == "0"
    assert set(gobuild.COMPONENTS) == {"pause", "kubernetes", "etcd", "coredns", "keda"}


def test_every_image_carries_a_binary_its_component_builds() -> None:
    for image in versions.all_images():
        assert image.binary in gobuild.COMPONENTS[image.component].binaries, image.tag


def test_each_wrapper_module_is_shipped_with_the_package() -> None:
    from importlib import resources

    root = resources.files("pytest_medpubsub.here").joinpath("go-modules")
    for name in gobuild.COMPONENTS:
        assert root.joinpath(name, "go.mod").is_file(), name


@pytest.mark.parametrize(
    ("text", "version"),
    [("go1.26.8", (1, 26)), ("go1.24", (1, 24)), ("devel +abc", (0, 0)), ("", (0, 0))],
)
def test_the_go_version_is_read_from_go_env(text: str, version: tuple[int, int]) -> None:
    assert gobuild.parse_go_version(text) == version


def test_a_control_plane_image_puts_its_binary_on_the_path() -> None:
    apiserver = versions.control_plane_images()[0]
    assert images.dockerfile(apiserver).splitlines() == [
        "FROM scratch",
        "COPY kube-apiserver /usr/local/bin/kube-apiserver",
        "ENV PATH=/usr/local/bin:/",
    ]


def test_the_keda_image_has_an_entrypoint_a_user_and_the_ca_bundle() -> None:
    lines = images.dockerfile(versions.keda_image()).splitlines()
    assert lines[1] == "COPY keda /keda"
    assert "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt" in lines
    assert "USER 65532:65532" in lines
    assert lines[-1] == 'ENTRYPOINT ["/keda"]'


def test_etcds_image_names_the_server_binary_etcd() -> None:
    etcd = next(i for i in versions.control_plane_images() if i.component == "etcd")
    assert images.dockerfile(etcd).splitlines()[1] == "COPY etcd /usr/local/bin/etcd"


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({"dockerd", "containerd", "runc", "conntrack"}, ["containernetworking-plugins"]),
        ({"dockerd", "containerd", "runc", "conntrack", "/usr/lib/cni/bridge"}, []),
        (set(), ["docker.io", "containerd", "runc", "containernetworking-plugins", "conntrack"]),
    ],
)
def test_only_packages_whose_tools_are_missing_are_installed(
    present: set[str], missing: list[str]
) -> None:
    wanted = {
        package: versions.DEBIAN_PACKAGES[package]
        for package in (
            "docker.io",
            "containerd",
            "runc",
            "containernetworking-plugins",
            "conntrack",
        )
    }
    assert packages.missing(wanted, present.__contains__) == missing


def test_a_tool_in_sbin_counts_even_when_path_lacks_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert packages.is_present("/") is True
    assert packages.is_present("no-such-tool-anywhere") is False


@pytest.mark.parametrize(
    ("env_file", "args"),
    [
        (
            'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/x.sock '
            '--node-ip=192.0.2.2"\n',
            ["--container-runtime-endpoint=unix:///run/x.sock", "--node-ip=192.0.2.2"],
        ),
        ("# nothing\nOTHER=1\n", []),
        ("", []),
    ],
)
def test_the_supervisor_expands_kubeadms_flags_like_the_systemd_unit(
    env_file: str, args: list[str]
) -> None:
    assert supervise.kubeadm_args(env_file) == args
