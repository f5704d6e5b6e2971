"""The cluster's images: built `FROM scratch` around the built binaries, saved once per version,
and imported into the cluster's containerd.

No registry is reachable, so kubeadm's images are built under the tags it asks for and the
archives are kept in the cache: a warm `up` imports them without Docker doing any work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here import gobuild
from pytest_medpubsub.here.commands import HereError, run
from pytest_medpubsub.here.layout import Layout
from pytest_medpubsub.here.versions import Image

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT_S = 300.0
IMPORT_TIMEOUT_S = 600.0


def dockerfile(image: Image) -> str:
    """The Dockerfile of one image: the binary at `image.path`, nothing else but CAs."""
    lines = ["FROM scratch", f"COPY {Path(image.path).name} {image.path}"]
    if image.ca_bundle:
        lines.append(f"COPY ca-certificates.crt {CA_BUNDLE}")
    lines.append("ENV PATH=/usr/local/bin:/")
    if image.user:
        lines.append(f"USER {image.user}")
    if image.entrypoint:
        lines.append(f'ENTRYPOINT ["{image.path}"]')
    return "\n".join(lines) + "\n"


def archive(layout: Layout, image: Image) -> Path:
    """Where the image's archive is cached: keyed by the version of the binary inside it."""
    component = gobuild.COMPONENTS[image.component]
    return layout.images(f"{component.name}-{component.version}") / image.archive_name


def ensure_archive(layout: Layout, image: Image) -> bool:
    """Build and save `image` unless its archive is cached; True when it was built now."""
    target = archive(layout, image)
    if target.is_file():
        return False
    binary = gobuild.binary(layout, image.component, image.binary)
    if not binary.is_file():
        raise HereError(f"cannot build {image.tag}: {binary} has not been built")
    with progress.step(f"building image {image.tag}"), tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        shutil.copy2(binary, context / Path(image.path).name)
        if image.ca_bundle:
            shutil.copy2(CA_BUNDLE, context / CA_BUNDLE.name)
        (context / "Dockerfile").write_text(dockerfile(image))
        env = dict(
            os.environ, DOCKER_BUILDKIT="0"
        )  # the classic builder works here; buildx may not
        run(["docker", "build", "-q", "-t", image.tag, str(context)], BUILD_TIMEOUT_S, env=env)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        run(["docker", "save", "-o", str(partial), image.tag], BUILD_TIMEOUT_S)
        partial.rename(target)
    return True


def import_archives(socket: Path, archives: Sequence[Path]) -> None:
    """Import saved archives into the cluster's containerd (namespace k8s.io, the CRI's)."""
    for path in archives:
        run(ctr(socket, "images", "import", str(path)), IMPORT_TIMEOUT_S)


def load_images(socket: Path, images: Sequence[str]) -> None:
    """`docker save IMAGES | ctr images import -`: the harness's own images into the cluster."""
    if not socket.is_socket():
        raise HereError(f"no cluster containerd is listening at {socket}; run `make cluster-here`")
    with progress.step(f"loading {', '.join(images)} into the cluster's containerd"):
        save = subprocess.Popen(
            ["docker", "save", *images], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            imported = subprocess.run(
                ctr(socket, "images", "import", "-"),
                stdin=save.stdout,
                capture_output=True,
                text=True,
                timeout=IMPORT_TIMEOUT_S,
                check=False,
            )
            saved_err = save.communicate(timeout=60)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            save.kill()
            raise HereError(
                f"loading {' '.join(images)} did not finish within {IMPORT_TIMEOUT_S:g} s"
            ) from None
        finally:
            if save.stdout is not None:
                save.stdout.close()
    if save.returncode != 0:
        raise HereError(f"`docker save {' '.join(images)}` failed: {saved_err.strip()}")
    if imported.returncode != 0:
        raise HereError(f"importing {' '.join(images)} failed: {imported.stderr.strip()}")


def ctr(socket: Path, *args: str) -> list[str]:
    return ["ctr", "-a", str(socket), "-n", "k8s.io", *args]
