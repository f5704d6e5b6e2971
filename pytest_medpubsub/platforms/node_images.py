"""Local images on their way into a kind or minikube node: tagged by content, and what the Docker
engine that holds them can do.

**Tagged by content.** A cluster kept with `--medpubsub-keep` (or a developer's running minikube
profile) is reused by the next run. Loaded again under the same tag, a rebuilt image changes
nothing that Kubernetes looks at: the patients' Deployment is applied unchanged, so its pods keep
running the old build, and with `imagePullPolicy: Never` nothing ever asks again. Each image is
therefore loaded as `<name>:<tag>-<12 hex of its image ID>` (the ID is a digest of the image's
content, `docker image inspect --format {{.Id}}`): a rebuilt image gets a new name, a changed pod
spec and a rollout, and an unchanged one keeps its name, so a second run loads nothing new. The
extra tag is removed from Docker again once loaded (`docker image rm` of a second tag only
untags), so the engine keeps one tag per image as before.

**Docker's containerd image store** (the default since Docker 29) is detected from
`docker info`'s `DriverStatus` (`driver-type: io.containerd.snapshotter.v1`); `docker image save
--platform` needs Docker API 1.48 (Docker 28.0) on both ends, so the API version the client
negotiated with the engine (`docker version --format {{.Client.APIVersion}}`) is read too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.commands import probe, run

DOCKER_TIMEOUT_S = 60.0
CONTENT_DIGITS = 12
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
SAVE_PLATFORM_API = (1, 48)  # `docker image save --platform` (Docker 28.0)
# Os/Architecture[/Variant] of an image, as `docker image save --platform` takes it.
PLATFORM_FORMAT = "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}"


@dataclass(frozen=True)
class Engine:
    """What the Docker engine holding the images does differently."""

    api_version: tuple[int, int]
    containerd_store: bool

    @property
    def saves_one_platform(self) -> bool:
        return self.api_version >= SAVE_PLATFORM_API


def content_tag(image: str, image_id: str) -> str:
    """`medpubsub/patient:0.1.0` with ID `sha256:0123abcd…` → `medpubsub/patient:0.1.0-0123abcd…`
    (12 hex digits; an untagged name counts as `latest`)."""
    digest = image_id.strip().rpartition(":")[2].lower()
    if len(digest) < CONTENT_DIGITS or any(c not in "0123456789abcdef" for c in digest):
        raise PlatformError(f"Docker gave {image} the image ID {image_id!r}, which is no digest")
    name, tag = split_tag(image)
    return f"{name}:{tag}-{digest[:CONTENT_DIGITS]}"


def split_tag(image: str) -> tuple[str, str]:
    """(`name`, `tag`) of a reference without a digest; a `:` before the last `/` is a port."""
    if "@" in image:
        raise PlatformError(f"{image} is pinned by digest; only tagged local images are loaded")
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def image_id_command(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", image]


def platform_command(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", PLATFORM_FORMAT, image]


def tag_commands(by_content: Mapping[str, str]) -> list[list[str]]:
    return [["docker", "tag", image, tagged] for image, tagged in by_content.items()]


def untag_command(tagged: Sequence[str]) -> list[str]:
    return ["docker", "image", "rm", *tagged]


@contextmanager
def tagged_by_content(images: Sequence[str]) -> Iterator[dict[str, str]]:
    """`{image: its content tag}`, those tags existing in Docker while the block runs (it loads
    them into the node); removed again afterwards, whatever happened."""
    by_content = {
        image: content_tag(image, run(image_id_command(image), timeout_s=DOCKER_TIMEOUT_S))
        for image in images
    }
    for command in tag_commands(by_content):
        run(command, timeout_s=DOCKER_TIMEOUT_S)
    try:
        yield by_content
    finally:
        extra = [tagged for image, tagged in by_content.items() if tagged != image]
        if extra:
            probe(untag_command(extra), timeout_s=DOCKER_TIMEOUT_S)  # a leftover tag is harmless


def parse_api_version(text: str) -> tuple[int, int]:
    """`1.52` → (1, 52)."""
    major, _, minor = text.strip().partition(".")
    try:
        return int(major), int(minor)
    except ValueError:
        raise PlatformError(f"Docker reported the API version {text.strip()!r}") from None


def uses_containerd_store(driver_status_json: str) -> bool:
    """True when `docker info --format '{{json .DriverStatus}}'` names containerd's snapshotter
    (the classic store lists the graph driver's details instead)."""
    try:
        status = json.loads(driver_status_json or "null")
    except json.JSONDecodeError:
        return False
    if not isinstance(status, list):
        return False
    return any(
        isinstance(pair, list) and len(pair) == 2 and pair[1] == CONTAINERD_SNAPSHOTTER
        for pair in status
    )


API_VERSION_COMMAND = ["docker", "version", "--format", "{{.Client.APIVersion}}"]
DRIVER_STATUS_COMMAND = ["docker", "info", "--format", "{{json .DriverStatus}}"]


def engine() -> Engine:
    """The running Docker engine's API version (as negotiated) and image store."""
    return Engine(
        api_version=parse_api_version(run(API_VERSION_COMMAND, timeout_s=DOCKER_TIMEOUT_S)),
        containerd_store=uses_containerd_store(
            run(DRIVER_STATUS_COMMAND, timeout_s=DOCKER_TIMEOUT_S)
        ),
    )


def platform(image: str) -> str:
    """`linux/amd64` (or `linux/arm64/v8`, …): the platform Docker holds `image` for."""
    return run(platform_command(image), timeout_s=DOCKER_TIMEOUT_S).strip()
