"""A kind cluster for the harness: created (or reused) with a pinned node image, images loaded in
a way that works with Docker's containerd image store, every `kind` call bounded by a timeout.

**Pins, in one place.** `KIND_VERSION` is the kind release the `e2e` job of
`.github/workflows/ci.yml` installs (a test keeps the two equal), and `NODE_IMAGE` is the node
image that release's notes list for Kubernetes v1.33.1, with its digest (kind supports a node
image only with the release that built it; the digest is also v0.29.0's built-in default in
`pkg/apis/config/defaults/image.go`). Kubernetes 1.33 is what both operators support: Strimzi
1.2.0 needs 1.30 or later (its `documentation/shared/attributes.adoc`), and KEDA 2.20 is tested
on 1.33-1.35 (keda.sh, "Kubernetes Compatibility"). Another installed kind only gets a warning:
its own release notes list the node images it was built for.

**Create and delete** run the same `kind` command lines pytest-kind's `KindCluster.create` and
`delete` run (`--name=`, `--kubeconfig=`, `--image=`, `--config`; a test records pytest-kind's
and compares), but through `watched.run_watched`: pytest-kind's `subprocess.run` calls have no
timeout, so a hung `kind create cluster` would hang the test session. Ours stop kind and its
`docker` children after `CREATE_TIMEOUT_S` / `DELETE_TIMEOUT_S` and say in one sentence what kind
printed last and which node containers exist in which state (`docker ps` by kind's cluster
label). kind is the one on PATH; pytest-kind would otherwise download kind v0.17.

**Loading images** (`load_commands`): with the classic image store, `kind load docker-image` as
always. With Docker's containerd image store (the default since Docker 29), `kind load
docker-image` pipes a plain `docker save` into the node's `ctr images import --all-platforms`;
that archive carries an image's whole index but only the blobs Docker holds, and the import
fails with "content digest … not found" (kind issue 3795). kind's documented workaround is used
instead: `docker image save --platform <the image's platform> --output <archive>` (one archive per
platform) and `kind load image-archive`. Every image is loaded under a content tag
(`node_images`), so a kept cluster runs what was just built.

A reused cluster must have been created with our kind config (its port mappings are checked),
and one on another node image gets a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.jars import cache_dir
from pytest_medpubsub.platforms import node_images
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.commands import probe, run
from pytest_medpubsub.platforms.kubectl import Kubectl
from pytest_medpubsub.platforms.prerequisites import require_docker_engine, require_tool
from pytest_medpubsub.platforms.watched import run_watched

# The kind release the CI job installs and the node image its release notes list for it.
KIND_VERSION = "v0.29.0"
NODE_IMAGE = (
    "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
)
KIND_CONFIG = Path("k8s/overlays/kind/kind-config.yaml")
HOST = "127.0.0.1"
EXTERNAL_PORTS = (32100, 32101)
# A cold create pulls the node image (hundreds of MB) and runs kubeadm: 1-3 min on a CI runner.
CREATE_TIMEOUT_S = 600.0
DELETE_TIMEOUT_S = 180.0
LOAD_TIMEOUT_S = 600.0
# The label kind puts on every node container of a cluster.
CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def create_command(kind: str, name: str, kubeconfig: Path, config: Path) -> list[str]:
    """`kind create cluster` as pytest-kind's `KindCluster(image=NODE_IMAGE).create(config)`
    runs it (`--image` overrides the node image of every node of the config)."""
    return [
        kind,
        "create",
        "cluster",
        f"--name={name}",
        f"--kubeconfig={kubeconfig}",
        f"--image={NODE_IMAGE}",
        "--config",
        str(config),
    ]


def delete_command(kind: str, name: str, kubeconfig: Path) -> list[str]:
    """`kind delete cluster` as pytest-kind's `KindCluster.delete` runs it."""
    return [kind, "delete", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}"]


def node_containers_command(name: str) -> list[str]:
    """The cluster's node containers, running or not, each as `name: status`."""
    return [
        "docker",
        "ps",
        "--all",
        "--filter",
        f"label={CLUSTER_LABEL}={name}",
        "--format",
        "{{.Names}}: {{.Status}}",
    ]


def node_image_command(name: str) -> list[str]:
    """The image the control-plane node of cluster `name` was started from."""
    return ["docker", "inspect", "--format", "{{.Config.Image}}", f"{name}-control-plane"]


def load_commands(
    kind: str,
    name: str,
    images: Sequence[str],
    *,
    engine: node_images.Engine,
    platforms: Mapping[str, str],
    archive_dir: Path,
) -> list[list[str]]:
    """The commands that load `images` (already in Docker) into every node of cluster `name`.

    `platforms` maps each image to its platform (`linux/amd64`); it is read only with the
    containerd image store, where each platform's images are saved to one archive (kind suggests
    one archive for many images) and that archive is loaded.
    """
    if not engine.containerd_store:
        return [[kind, "load", "docker-image", "--name", name, *images]]
    if not engine.saves_one_platform:
        have = ".".join(map(str, engine.api_version))
        need = ".".join(map(str, node_images.SAVE_PLATFORM_API))
        raise PlatformError(
            f"Docker uses the containerd image store, where `kind load docker-image` fails "
            f"(kind issue 3795), and this Docker (API {have}) cannot save one platform of an "
            f"image (`docker image save --platform` needs API {need}, Docker 28); upgrade "
            "Docker or turn the containerd image store off, then run again"
        )
    by_platform: dict[str, list[str]] = {}
    for image in images:
        by_platform.setdefault(platforms[image], []).append(image)
    commands = []
    for platform, group in sorted(by_platform.items()):
        archive = archive_dir / f"images-{platform.replace('/', '-')}.tar"
        commands.append(
            ["docker", "image", "save", "--platform", platform, "--output", str(archive), *group]
        )
        commands.append([kind, "load", "image-archive", "--name", name, str(archive)])
    return commands


def installed_version(version_output: str) -> str | None:
    """`kind v0.29.0 go1.24.2 linux/amd64` → `v0.29.0`; None for anything else."""
    words = version_output.split()
    if len(words) >= 2 and words[0] == "kind" and words[1].startswith("v"):
        return words[1]
    return None


def version_warning(installed: str | None) -> str | None:
    """A sentence when the installed kind is not the one `NODE_IMAGE` was built for."""
    if installed == KIND_VERSION:
        return None
    return (
        f"kind {installed or '(version unknown)'} is installed, but the node image {NODE_IMAGE} "
        f"is the one kind {KIND_VERSION} lists (the CI job's kind); another kind may fail to "
        f"create the cluster or load images into it, so install kind {KIND_VERSION} if it does"
    )


def node_image_warning(name: str, node_image: str) -> str | None:
    """A sentence when a reused cluster's node is not on `NODE_IMAGE`."""
    if node_image.strip() == NODE_IMAGE:
        return None
    return (
        f"the reused kind cluster {name} runs the node image {node_image.strip() or '(unknown)'}, "
        f"not {NODE_IMAGE}; delete it (`kind delete cluster --name {name}`) to run on the pinned "
        "Kubernetes"
    )


class KindBackend:
    """Create-or-reuse a kind cluster named `cluster_name`; delete it only if created here."""

    name = "kind"
    overlay = "kind"
    external_kafka_overlay = "external-kafka-preloaded"

    def __init__(self, project_dir: Path, cluster_name: str) -> None:
        self.project_dir = project_dir
        self.cluster_name = cluster_name
        self.state_dir = cache_dir() / "kind" / cluster_name
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.created = False
        self._kind = "kind"

    def check(self) -> None:
        require_docker_engine(self.name)
        require_tool("kind", "the kind platform creates its cluster with kind")
        require_tool("kubectl", "the kind platform drives the cluster with kubectl")

    def up(self) -> Kubectl:
        self._kind = require_tool("kind", "the kind platform creates its cluster with kind")
        require_tool("kubectl", "the kind platform drives the cluster")
        outcome = probe([self._kind, "version"], timeout_s=30)
        warning = version_warning(installed_version(outcome.stdout) if outcome else None)
        if warning:
            progress.say(warning)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._exists():
            with progress.step(f"reusing kind cluster {self.cluster_name}"):
                self.kubeconfig.write_text(
                    run(
                        [self._kind, "get", "kubeconfig", "--name", self.cluster_name],
                        timeout_s=30,
                    )
                )
                self.kubeconfig.chmod(0o600)
                self._check_port_mappings()
                self._check_node_image()
            return Kubectl(kubeconfig=self.kubeconfig)
        # A create that fails or times out can leave node containers: from here on they are ours.
        self.created = True
        log = self.state_dir / "kind-create.log"
        with progress.step(
            f"creating kind cluster {self.cluster_name} on {NODE_IMAGE.partition('@')[0]} "
            f"(log in {log})"
        ):
            run_watched(
                create_command(
                    self._kind,
                    self.cluster_name,
                    self.kubeconfig,
                    self.project_dir / KIND_CONFIG,
                ),
                timeout_s=CREATE_TIMEOUT_S,
                log=log,
                seen=self._node_containers,
            )
        return Kubectl(kubeconfig=self.kubeconfig)

    def load_images(self, images: Sequence[str]) -> Mapping[str, str]:
        engine = node_images.engine()
        self.state_dir.mkdir(parents=True, exist_ok=True)  # the archives' place
        with node_images.tagged_by_content(images) as by_content:
            loaded = list(by_content.values())
            platforms = (
                {image: node_images.platform(image) for image in loaded}
                if engine.containerd_store
                else {}
            )
            how = "image archives" if engine.containerd_store else "kind load docker-image"
            commands = load_commands(
                self._kind,
                self.cluster_name,
                loaded,
                engine=engine,
                platforms=platforms,
                archive_dir=self.state_dir,
            )
            try:
                with progress.step(f"loading {', '.join(loaded)} into kind ({how})"):
                    for command in commands:
                        run(command, timeout_s=LOAD_TIMEOUT_S)
            finally:
                for archive in self.state_dir.glob("images-*.tar"):
                    archive.unlink()  # hundreds of MB each, and loaded now
        return by_content

    def advertised_host(self, kubectl: Kubectl) -> str:
        return HOST

    def down(self) -> None:
        """Delete the cluster if this run created it (or tried to)."""
        if self.created:
            log = self.state_dir / "kind-delete.log"
            with progress.step(f"deleting kind cluster {self.cluster_name}"):
                run_watched(
                    delete_command(self._kind, self.cluster_name, self.kubeconfig),
                    timeout_s=DELETE_TIMEOUT_S,
                    log=log,
                    seen=self._node_containers,
                )
        self.created = False

    def describe(self) -> str:
        return (
            f"kind cluster {self.cluster_name} (KUBECONFIG={self.kubeconfig}; delete it with "
            f"`kind delete cluster --name {self.cluster_name}`)"
        )

    def _exists(self) -> bool:
        outcome = probe([self._kind, "get", "clusters"], timeout_s=30)
        if outcome is None or not outcome.ok:
            raise PlatformError("`kind get clusters` failed; is the Docker engine running?")
        return self.cluster_name in outcome.stdout.split()

    def _node_containers(self) -> str:
        """What Docker says of the cluster's node containers (for a timeout's message)."""
        outcome = probe(node_containers_command(self.cluster_name), timeout_s=15)
        if outcome is None or not outcome.ok:
            return "`docker ps` did not answer"
        found = "; ".join(line.strip() for line in outcome.stdout.splitlines() if line.strip())
        return f"its node containers: {found or 'none'}"

    def _check_port_mappings(self) -> None:
        """A reused cluster must have been created with our kind config, or Kafka is unreachable."""
        node = f"{self.cluster_name}-control-plane"
        for port in EXTERNAL_PORTS:
            outcome = probe(["docker", "port", node, f"{port}/tcp"], timeout_s=15)
            if outcome is None or f"{HOST}:{port}" not in outcome.stdout:
                raise PlatformError(
                    f"kind cluster {self.cluster_name} exists without the port mappings of "
                    f"{KIND_CONFIG} ({HOST}:{port} is not mapped); delete it with `kind delete "
                    f"cluster --name {self.cluster_name}` and run again"
                )

    def _check_node_image(self) -> None:
        outcome = probe(node_image_command(self.cluster_name), timeout_s=15)
        warning = node_image_warning(self.cluster_name, outcome.stdout if outcome else "")
        if warning:
            progress.say(warning)
