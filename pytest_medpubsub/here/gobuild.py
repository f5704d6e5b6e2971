"""Building the cluster's binaries from the Go module proxy, once per version.

Each component is a small wrapper module in `go-modules/<name>/` (its go.mod pins what upstream's
relative `replace` directives cannot give a published module). A build copies the wrapper into
the cache, resolves it (`go mod tidy`, the only network step, retried), and builds the commands
statically; `build.json` marks the result complete, so a second run builds nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here import versions
from pytest_medpubsub.here.commands import HereError, retried, run, run_logged
from pytest_medpubsub.here.layout import Layout

MARKER = "build.json"
RESOLVE_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 3600.0
# Fixed so that two builds of one version are the same binary (and say the same version).
BUILD_DATE = "1970-01-01T00:00:00Z"
COMMIT = "go-module-proxy"


@dataclass(frozen=True)
class Component:
    name: str  # the folder under go-modules/
    version: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]  # what `go build -o DIR/` writes for those packages
    ldflags: str
    tags: str = ""


def kubernetes_ldflags(version: str) -> str:
    """-X flags for both version packages: kubeadm reads its own version to choose image tags,
    and without them it reads v0.0.0-master."""
    major, minor = version.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": COMMIT,
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
    }
    flags = [
        f"-X '{package}.{key}={value}'"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
    ]
    return "all= " + " ".join(flags) + " -s -w"


def keda_ldflags(version: str) -> str:
    package = "github.com/kedacore/keda/v2/version"
    return f"-X={package}.Version={version} -X={package}.GitCommit={COMMIT} -s -w"


KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubeadm",
    "kubelet",
)

# The operator, the metrics API server and the admission webhooks: the release's three Deployments.
KEDA_COMMANDS = ("operator", "adapter", "webhooks")

COMPONENTS = {
    component.name: component
    for component in (
        Component("pause", versions.PAUSE, ("medpubsub.local/pause",), ("pause",), "-s -w"),
        Component(
            "kubernetes",
            versions.KUBERNETES,
            tuple(f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS),
            KUBERNETES_COMMANDS,
            kubernetes_ldflags(versions.KUBERNETES),
            tags="selinux,notest,grpcnotrace",
        ),
        # etcd's main package is its server module's root; Go names a /v3 command by the element
        # before the major-version suffix.
        Component("etcd", versions.ETCD, ("go.etcd.io/etcd/server/v3",), ("server",), "-s -w"),
        Component(
            "coredns", versions.COREDNS, ("github.com/coredns/coredns",), ("coredns",), "-s -w"
        ),
        Component(
            "keda",
            versions.KEDA,
            tuple(f"github.com/kedacore/keda/v2/cmd/{command}" for command in KEDA_COMMANDS),
            KEDA_COMMANDS,
            keda_ldflags(versions.KEDA),
        ),
    )
}


def binary(layout: Layout, component: str, name: str) -> Path:
    """The path of a built binary of `component`."""
    spec = COMPONENTS[component]
    return layout.bin(spec.name, spec.version) / name


def is_built(layout: Layout, component: Component) -> bool:
    """The marker and every binary are there (a cache from a build of fewer commands is not)."""
    out = layout.bin(component.name, component.version)
    return (out / MARKER).is_file() and all((out / name).is_file() for name in component.binaries)


def build_args(component: Component, out_dir: Path) -> list[str]:
    """The `go build` command line (niced: the machine has few cores and others work on it)."""
    args = ["nice", "-n", "10", "go", "build", "-trimpath"]
    if component.tags:
        args += ["-tags", component.tags]
    return [*args, "-ldflags", component.ldflags, "-o", f"{out_dir}/", *component.packages]


def go_env() -> dict[str, str]:
    """Static binaries: the images are FROM scratch. VCS stamping would look at the repo."""
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    # The wrappers name their own Go version; never fetch a toolchain from the network.
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def check_go() -> None:
    """Go must be installed and new enough for every wrapper (KEDA's needs the newest)."""
    version = run(["go", "env", "GOVERSION"], 60).stdout.strip()
    if parse_go_version(version) < versions.GO_MINIMUM:
        wanted = ".".join(map(str, versions.GO_MINIMUM))
        raise HereError(f"building the cluster needs Go {wanted} or newer, found {version}")


def parse_go_version(text: str) -> tuple[int, int]:
    """`go1.26.8` -> (1, 26); anything unreadable reads as (0, 0)."""
    digits = text.strip().removeprefix("go").split(".")
    try:
        return int(digits[0]), int(digits[1])
    except (ValueError, IndexError):
        return (0, 0)


def ensure_built(layout: Layout, component: Component) -> float:
    """Build `component` unless its binaries are cached; return the seconds it took (0 cached)."""
    if is_built(layout, component):
        return 0.0
    started = time.monotonic()
    src = layout.src(component.name, component.version)
    out = layout.bin(component.name, component.version)
    log = layout.root / "logs" / f"build-{component.name}-{component.version}.log"
    env = go_env()
    _copy_wrapper(component.name, src)
    with progress.step(f"resolving {component.name} {component.version} (go mod tidy)"):
        retried(
            ["go", "mod", "tidy"],
            RESOLVE_TIMEOUT_S,
            log,
            what=f"resolving {component.name} from the Go module proxy",
            env=env,
            cwd=src,
        )
    resolved = time.monotonic()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with progress.step(f"building {component.name} {component.version} (log: {log})"):
        run_logged(build_args(component, staging), BUILD_TIMEOUT_S, log, env=env, cwd=src)
    missing = [name for name in component.binaries if not (staging / name).is_file()]
    if missing:
        raise HereError(f"building {component.name} wrote no {', '.join(missing)} (log: {log})")
    took = {
        "resolve_seconds": round(resolved - started, 1),
        "build_seconds": round(time.monotonic() - resolved, 1),
    }
    (staging / MARKER).write_text(json.dumps(took) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return time.monotonic() - started


def ensure_all(layout: Layout) -> dict[str, float]:
    """Build what is not cached; Go is needed only then (a warm machine may have none)."""
    if not all(is_built(layout, spec) for spec in COMPONENTS.values()):
        check_go()
    return {name: ensure_built(layout, spec) for name, spec in COMPONENTS.items()}


def build_record(layout: Layout, component: Component) -> dict[str, float]:
    """What `build.json` says the (cold) build took."""
    try:
        record = json.loads((layout.bin(component.name, component.version) / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): float(value) for key, value in record.items()}


def _copy_wrapper(name: str, src: Path) -> None:
    """Copy go-modules/<name>/ into the cache, keeping a go.sum resolved earlier."""
    src.mkdir(parents=True, exist_ok=True)
    wrapper = resources.files("pytest_medpubsub.here").joinpath("go-modules", name)
    for entry in wrapper.iterdir():
        if entry.is_file():
            (src / entry.name).write_bytes(entry.read_bytes())
