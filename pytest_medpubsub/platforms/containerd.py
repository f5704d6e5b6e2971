"""Images for a node's containerd, for a cluster without a registry (`--medpubsub-containerd`).

The images are built with Docker here and streamed into the containerd the kubelet uses:
`docker save IMAGE | ctr --address SOCKET --namespace k8s.io images import -` (the CRI plugin
keeps Kubernetes' images in the `k8s.io` namespace). The pods then run them with
`imagePullPolicy: Never`, so a missing import fails fast as ErrImageNeverPull instead of a pull
from somewhere else.
"""

from __future__ import annotations

from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.commands import pipe, probe, tail
from pytest_medpubsub.platforms.prerequisites import PROBE_TIMEOUT_S, require_tool

NAMESPACE = "k8s.io"
IMPORT_TIMEOUT_S = 600.0


def ctr(socket: str, *args: str) -> list[str]:
    """`ctr` against `socket`, in Kubernetes' namespace."""
    return ["ctr", "--address", socket, "--namespace", NAMESPACE, *args]


def require_containerd(socket: str) -> None:
    """`ctr` is installed and the containerd at `socket` answers, within seconds."""
    require_tool("ctr", "images are imported into the node's containerd with ctr")
    if not Path(socket).is_socket():
        raise PlatformUnavailable(
            f"--medpubsub-containerd={socket} is not a socket; give the containerd socket the "
            "node's kubelet uses."
        )
    outcome = probe(ctr(socket, "version"), timeout_s=PROBE_TIMEOUT_S)
    if outcome is None or not outcome.ok:
        detail = tail(outcome.stderr, 1) if outcome is not None else "no answer"
        raise PlatformUnavailable(f"the containerd at {socket} does not answer ({detail}).")


def normalized(image: str) -> str:
    """The name containerd stores an image under: Docker's short names expanded
    (`medpubsub/x:1` is `docker.io/medpubsub/x:1`, `x` is `docker.io/library/x:latest`)."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def images(socket: str) -> set[str]:
    """The image names the containerd at `socket` holds for Kubernetes."""
    outcome = probe(ctr(socket, "images", "list", "--quiet"), timeout_s=PROBE_TIMEOUT_S)
    if outcome is None or not outcome.ok:
        raise PlatformError(f"cannot list the images of the containerd at {socket}")
    return set(outcome.stdout.split())


def has_image(socket: str, image: str) -> bool:
    return normalized(image) in images(socket)


def import_image(image: str, socket: str, log_dir: Path) -> None:
    """Stream `image` from Docker into the containerd at `socket`, bounded by a timeout."""
    log = log_dir / f"ctr-import-{image.replace('/', '_').replace(':', '_')}.log"
    with progress.step(f"importing {image} into the containerd at {socket}"):
        pipe(
            ["docker", "save", image],
            ctr(socket, "images", "import", "-"),
            timeout_s=IMPORT_TIMEOUT_S,
            log=log,
        )
    if not has_image(socket, image):
        raise PlatformError(
            f"`docker save {image} | ctr import` succeeded but the containerd at {socket} has no "
            f"{normalized(image)}"
        )
