"""The service images: which ones the manifests use, and building them from this checkout.

The image names come from the rendered manifests (`medpubsub/<service>:<tag>`), so the tag a pod
runs and the tag built here cannot drift apart; `system/<service>/Dockerfile` builds each, with
the repository root as the context (.dockerignore keeps it to `system/`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_medpubsub.k8s.objects import Manifest, pod_shapes
from pytest_medpubsub.platforms.commands import run

IMAGE_PREFIX = "medpubsub/"
BUILD_TIMEOUT_S = 900.0


def service_images(objects: Iterable[Manifest]) -> dict[str, str]:
    """`{service: image}` for every container image of ours in the manifests."""
    images = {}
    for obj in objects:
        for pod in pod_shapes(obj):
            for container in pod.containers():
                image = container.get("image")
                if isinstance(image, str) and image.startswith(IMAGE_PREFIX):
                    service = image.removeprefix(IMAGE_PREFIX).partition(":")[0]
                    images[service] = image
    return images


def build(project_dir: Path, service: str, image: str, log_dir: Path) -> None:
    """`docker build -f system/<service>/Dockerfile -t <image> .` (output in `log_dir`)."""
    dockerfile = Path("system") / service / "Dockerfile"
    run(
        [
            "docker",
            "build",
            "--file",
            str(project_dir / dockerfile),
            "--tag",
            image,
            str(project_dir),
        ],
        timeout_s=BUILD_TIMEOUT_S,
        log=log_dir / f"docker-build-{service}.log",
    )


def push(image: str, registry: str, log_dir: Path) -> str:
    """Tag `image` into `registry` and push it; the name the cluster pulls."""
    target = f"{registry.rstrip('/')}/{image}"
    run(["docker", "tag", image, target], timeout_s=60)
    run(["docker", "push", target], timeout_s=BUILD_TIMEOUT_S, log=log_dir / "docker-push.log")
    return target
