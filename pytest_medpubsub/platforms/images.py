"""The service images: which ones the manifests use, and building them from this checkout.

The image names come from the manifests (`medpubsub/<service>:<tag>`), so the tag a pod runs and
the tag built here cannot drift apart. `system/Dockerfile` builds each as the stage named after
its service (`--target <service>`), with the repository root as the context (.dockerignore keeps
it to `system/`), on the base `base_image.py` chooses (the official one, or a local Debian base
where it cannot be pulled).

`make images` runs this module: `python -m pytest_medpubsub.platforms.images [--base-image IMAGE]`
starts the Docker engine if it is installed but not running, builds the three images and prints the
base, each image's build time and size.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_medpubsub import progress, project
from pytest_medpubsub.k8s.dispatcher import dispatched_job_templates
from pytest_medpubsub.k8s.dockerfiles import DOCKERFILE, default_base_image
from pytest_medpubsub.k8s.objects import Manifest, load_documents, pod_shapes
from pytest_medpubsub.platforms import base_image, docker_engine
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.commands import run

IMAGE_PREFIX = "medpubsub/"
BUILD_TIMEOUT_S = 900.0
# The manifests that name our images (a render needs kustomize; these do not).
IMAGE_MANIFESTS = (
    Path("k8s/base/patient-deployment.yaml"),
    project.SCALEDJOB_MANIFEST,
    Path("k8s/components/dispatcher/deployment.yaml"),
)


def service_images(objects: Iterable[Manifest]) -> dict[str, str]:
    """`{service: image}` for every container image of ours in the manifests (and in the
    dispatcher's Job template, whose Jobs run the medicine image)."""
    objects = list(objects)
    images = {}
    for obj in [*objects, *(job for _, _, job in dispatched_job_templates(objects))]:
        for pod in pod_shapes(obj):
            for container in pod.containers():
                image = container.get("image")
                if isinstance(image, str) and image.startswith(IMAGE_PREFIX):
                    service = image.removeprefix(IMAGE_PREFIX).partition(":")[0]
                    images[service] = image
    return images


def official_base(project_dir: Path) -> str:
    """The default `BASE_IMAGE` of the Dockerfile (one for every service)."""
    default = default_base_image(project_dir)
    if default is None:
        raise PlatformError(f"{DOCKERFILE}'s ARG BASE_IMAGE has no default")
    return default


def choose_base(project_dir: Path, log_dir: Path, given: str | None = None) -> base_image.Base:
    """The base the images build on, said to the user (see `base_image.choose`)."""
    base = base_image.choose(official_base(project_dir), log_dir, given)
    progress.say(f"base image: {base}")
    return base


def build(
    project_dir: Path, service: str, image: str, log_dir: Path, base: str | None = None
) -> None:
    """`docker build -f system/Dockerfile --target <service> [--build-arg BASE_IMAGE=base]
    -t <image> .` (output in `log_dir`)."""
    run(
        [
            "docker",
            "build",
            "--file",
            str(project_dir / DOCKERFILE),
            "--target",
            service,
            *(["--build-arg", f"BASE_IMAGE={base}"] if base else []),
            "--tag",
            image,
            str(project_dir),
        ],
        timeout_s=BUILD_TIMEOUT_S,
        log=log_dir / f"docker-build-{service}.log",
    )


def manifest_images(project_dir: Path) -> dict[str, str]:
    """`{service: image}` of the checkout's manifests (`IMAGE_MANIFESTS`, no render needed)."""
    return service_images(
        obj
        for manifest in IMAGE_MANIFESTS
        for obj in load_documents((project_dir / manifest).read_text(encoding="utf-8"))
    )


def build_all(project_dir: Path, log_dir: Path, given_base: str | None = None) -> dict[str, str]:
    """The service images on the chosen base; `{service: image}`, one summary line each."""
    images = manifest_images(project_dir)
    base = choose_base(project_dir, log_dir, given_base)
    for service, image in sorted(images.items()):
        started = time.monotonic()
        log = log_dir / f"docker-build-{service}.log"
        with progress.step(f"building {image} on {base.image} (docker build, log in {log})"):
            build(project_dir, service, image, log_dir, base.image)
        size = run(["docker", "image", "inspect", "--format", "{{.Size}}", image], timeout_s=15)
        progress.say(
            f"{image}: built in {time.monotonic() - started:.0f} s on {base.image}, "
            f"{int(size) / 1e6:.0f} MB"
        )
    return images


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.platforms.images",
        description="Build the patient, medicine and dispatcher images with Docker (what `make "
        "images` does).",
    )
    parser.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="build on this base (default: the Dockerfile's official base when Docker has or "
        "pulls it, else a local Debian bookworm base built with debootstrap)",
    )
    parser.add_argument("--log-dir", type=Path, default=Path("build/images"), metavar="DIR")
    parser.add_argument("--project", type=Path, default=Path.cwd(), metavar="DIR")
    arguments = parser.parse_args(argv)
    try:
        docker_engine.ensure_running(arguments.log_dir / "dockerd.log")
        build_all(arguments.project, arguments.log_dir, arguments.base_image)
    except PlatformUnavailable as error:
        print(f"images: {error}", file=sys.stderr)
        return 2
    except PlatformError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def push(image: str, registry: str, log_dir: Path) -> str:
    """Tag `image` into `registry` and push it; the name the cluster pulls."""
    target = f"{registry.rstrip('/')}/{image}"
    run(["docker", "tag", image, target], timeout_s=60)
    run(["docker", "push", target], timeout_s=BUILD_TIMEOUT_S, log=log_dir / "docker-push.log")
    return target
