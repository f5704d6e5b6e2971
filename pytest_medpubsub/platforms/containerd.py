"""Images for a node's containerd, for a cluster without a registry (`--medpubsub-containerd`).

The images are built with Docker here and streamed into the containerd the kubelet uses:
`docker save IMAGE | ctr --address SOCKET --namespace k8s.io images import -` (the CRI plugin
keeps Kubernetes' images in the `k8s.io` namespace). The pods then run them with
`imagePullPolicy: Never`, so a missing import fails fast as ErrImageNeverPull instead of a pull
from somewhere else.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.commands import probe, tail
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
    """Stream `image` from Docker into the containerd at `socket`; both ends are bounded by one
    timeout and killed when it passes, and a failure quotes the tools' last words."""
    log = log_dir / f"ctr-import-{image.replace('/', '_').replace(':', '_')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    shown = f"docker save {image} | {' '.join(ctr(socket, 'images', 'import', '-'))}"
    with (
        progress.step(f"importing {image} into the containerd at {socket}"),
        log.open("w", encoding="utf-8") as sink,
        tempfile.TemporaryFile() as save_errors,
    ):
        save = subprocess.Popen(
            ["docker", "save", image], stdout=subprocess.PIPE, stderr=save_errors
        )
        assert save.stdout is not None
        load = subprocess.Popen(
            ctr(socket, "images", "import", "-"),
            stdin=save.stdout,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        save.stdout.close()  # ctr holds the pipe now: docker sees a broken pipe if ctr dies
        try:
            load.wait(timeout=IMPORT_TIMEOUT_S)
            save.wait(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for process in (save, load):
                process.kill()
                process.wait()
            raise PlatformError(f"`{shown}` did not finish within {IMPORT_TIMEOUT_S:g} s") from None
        save_errors.seek(0)
        save_tail = tail(save_errors.read().decode(errors="replace"))
    if save.returncode != 0:
        raise PlatformError(f"`docker save {image}` failed with exit status {save.returncode}: "
                            f"{save_tail}")  # fmt: skip
    if load.returncode != 0:
        raise PlatformError(
            f"`{shown}` failed with exit status {load.returncode} (full output: {log}):\n"
            f"{tail(log.read_text(encoding='utf-8', errors='replace'))}"
        )
    if not has_image(socket, image):
        raise PlatformError(
            f"`{shown}` succeeded but the containerd at {socket} has no {normalized(image)}"
        )
