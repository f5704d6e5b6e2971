"""How the kind backend loads the images it built (proven by command lines, as in
test_k8s_kind.py): with `kind load docker-image` on Docker's classic image store, and as
single-platform archives (`docker image save --platform` + `kind load image-archive`) on the
containerd image store, where `kind load docker-image` fails (kind issue 3795); every image is
loaded under a content tag, and the tag is removed from Docker afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_medpubsub.platforms import kind, node_images
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.kind import KindBackend
from tests.conftest import PROJECT
from tests.standin_tools import Recorder

CLASSIC = '[["Backing Filesystem","extfs"],["Supports d_type","true"],["userxattr","false"]]'
CONTAINERD = '[["driver-type","io.containerd.snapshotter.v1"]]'
PATIENT_ID = "0123456789abcdef" * 4
MEDICINE_ID = "fedcba9876543210" * 4


# ---------------------------------------------------------------------- loading images


IMAGES = ["medpubsub/medicine:0.1.0-fedcba987654", "medpubsub/patient:0.1.0-0123456789ab"]


def save(platform: str, *images: str) -> list[str]:
    """The `docker image save` line expected for one platform's archive."""
    archive = f"state/images-{platform.replace('/', '-')}.tar"
    return ["docker", "image", "save", "--platform", platform, "--output", archive, *images]


def load_archive(platform: str) -> list[str]:
    """The `kind load image-archive` line expected for one platform's archive."""
    archive = f"state/images-{platform.replace('/', '-')}.tar"
    return ["kind", "load", "image-archive", "--name", "medpubsub", archive]


@pytest.mark.parametrize(
    ("engine", "platforms", "expected"),
    [
        pytest.param(
            node_images.Engine((1, 52), containerd_store=False),
            {},
            [["kind", "load", "docker-image", "--name", "medpubsub", *IMAGES]],
            id="classic store: kind load docker-image",
        ),
        pytest.param(
            node_images.Engine((1, 41), containerd_store=False),
            {},
            [["kind", "load", "docker-image", "--name", "medpubsub", *IMAGES]],
            id="classic store, old Docker",
        ),
        pytest.param(
            node_images.Engine((1, 52), containerd_store=True),
            dict.fromkeys(IMAGES, "linux/amd64"),
            [save("linux/amd64", *IMAGES), load_archive("linux/amd64")],
            id="containerd store: one single-platform archive",
        ),
        pytest.param(
            node_images.Engine((1, 48), containerd_store=True),
            {IMAGES[0]: "linux/arm64/v8", IMAGES[1]: "linux/amd64"},
            [
                save("linux/amd64", IMAGES[1]),
                load_archive("linux/amd64"),
                save("linux/arm64/v8", IMAGES[0]),
                load_archive("linux/arm64/v8"),
            ],
            id="containerd store: an archive per platform",
        ),
    ],
)
def test_load_command_lines(
    engine: node_images.Engine, platforms: dict[str, str], expected: list[list[str]]
) -> None:
    commands = kind.load_commands(
        "kind", "medpubsub", IMAGES, engine=engine, platforms=platforms, archive_dir=Path("state")
    )
    assert commands == expected
    if engine.containerd_store:  # kind issue 3795
        assert all(command[1:3] != ["load", "docker-image"] for command in commands)


def test_the_containerd_store_on_a_docker_without_save_platform_is_one_sentence() -> None:
    engine = node_images.Engine((1, 47), containerd_store=True)
    with pytest.raises(PlatformError) as raised:
        kind.load_commands(
            "kind", "medpubsub", IMAGES, engine=engine, platforms={}, archive_dir=Path("state")
        )
    message = str(raised.value)
    assert "kind issue 3795" in message
    assert "API 1.47" in message
    assert "needs API 1.48, Docker 28" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("driver_status", "containerd"),
    [
        (CLASSIC, False),  # this machine's Docker 20.10 with overlay2
        (CONTAINERD, True),  # Docker 29's default
        ('[["driver-type","io.containerd.snapshotter.v1"],["other","x"]]', True),
        ("null", False),
        ("", False),
        ("not json", False),
        ('{"driver-type": "io.containerd.snapshotter.v1"}', False),
    ],
)
def test_the_containerd_image_store_is_read_from_the_driver_status(
    driver_status: str, containerd: bool
) -> None:
    assert node_images.uses_containerd_store(driver_status) is containerd


@pytest.mark.parametrize(
    ("text", "version", "saves_one_platform"),
    [("1.52\n", (1, 52), True), ("1.48", (1, 48), True), ("1.47", (1, 47), False)],
)
def test_the_api_version_decides_whether_one_platform_can_be_saved(
    text: str, version: tuple[int, int], saves_one_platform: bool
) -> None:
    assert node_images.parse_api_version(text) == version
    assert node_images.Engine(version, True).saves_one_platform is saves_one_platform


def test_a_garbled_api_version_is_an_error() -> None:
    with pytest.raises(PlatformError, match="API version"):
        node_images.parse_api_version("unknown")


@pytest.mark.parametrize(
    ("image", "image_id", "tagged"),
    [
        (
            "medpubsub/patient:0.1.0",
            f"sha256:{PATIENT_ID}\n",
            "medpubsub/patient:0.1.0-0123456789ab",
        ),
        ("medpubsub/patient", f"sha256:{PATIENT_ID}", "medpubsub/patient:latest-0123456789ab"),
        (
            "localhost:5000/medicine",
            f"sha256:{MEDICINE_ID}",
            "localhost:5000/medicine:latest-fedcba987654",
        ),
        ("localhost:5000/medicine:1", PATIENT_ID.upper(), "localhost:5000/medicine:1-0123456789ab"),
    ],
)
def test_content_tags(image: str, image_id: str, tagged: str) -> None:
    assert node_images.content_tag(image, image_id) == tagged


@pytest.mark.parametrize(
    ("image", "image_id"),
    [
        ("medpubsub/patient:0.1.0", "sha256:"),
        ("medpubsub/patient:0.1.0", "Error: No such image"),
        ("medpubsub/patient@sha256:" + PATIENT_ID, "sha256:" + PATIENT_ID),
    ],
)
def test_content_tags_refuse_what_is_no_local_tagged_image(image: str, image_id: str) -> None:
    with pytest.raises(PlatformError):
        node_images.content_tag(image, image_id)


def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver_status: str) -> Recorder:
    recorder = Recorder(tmp_path, monkeypatch)
    monkeypatch.setenv("MEDPUBSUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STANDIN_DRIVER_STATUS", driver_status)
    monkeypatch.setenv("STANDIN_ID_patient", PATIENT_ID)
    monkeypatch.setenv("STANDIN_ID_medicine", MEDICINE_ID)
    return recorder


def test_loading_on_the_classic_store_tags_by_content_loads_and_untags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = backend(tmp_path, monkeypatch, CLASSIC)
    loaded = KindBackend(PROJECT, "medpubsub").load_images(
        ["medpubsub/medicine:0.1.0", "medpubsub/patient:0.1.0"]
    )
    assert loaded == {
        "medpubsub/medicine:0.1.0": "medpubsub/medicine:0.1.0-fedcba987654",
        "medpubsub/patient:0.1.0": "medpubsub/patient:0.1.0-0123456789ab",
    }
    assert recorder.calls() == [
        ["docker", "version", "--format", "{{.Client.APIVersion}}"],
        ["docker", "info", "--format", "{{json .DriverStatus}}"],
        ["docker", "image", "inspect", "--format", "{{.Id}}", "medpubsub/medicine:0.1.0"],
        ["docker", "image", "inspect", "--format", "{{.Id}}", "medpubsub/patient:0.1.0"],
        ["docker", "tag", "medpubsub/medicine:0.1.0", "medpubsub/medicine:0.1.0-fedcba987654"],
        ["docker", "tag", "medpubsub/patient:0.1.0", "medpubsub/patient:0.1.0-0123456789ab"],
        ["kind", "load", "docker-image", "--name", "medpubsub", *IMAGES],
        ["docker", "image", "rm", *IMAGES],
    ]


def test_loading_on_the_containerd_store_saves_one_platform_and_loads_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = backend(tmp_path, monkeypatch, CONTAINERD)
    monkeypatch.setenv("STANDIN_PLATFORM", "linux/arm64/v8")
    KindBackend(PROJECT, "medpubsub").load_images(
        ["medpubsub/medicine:0.1.0", "medpubsub/patient:0.1.0"]
    )
    archive = str(tmp_path / "cache" / "kind" / "medpubsub" / "images-linux-arm64-v8.tar")
    calls = recorder.calls()
    assert calls[4:] == [
        ["docker", "tag", "medpubsub/medicine:0.1.0", "medpubsub/medicine:0.1.0-fedcba987654"],
        ["docker", "tag", "medpubsub/patient:0.1.0", "medpubsub/patient:0.1.0-0123456789ab"],
        ["docker", "image", "inspect", "--format", node_images.PLATFORM_FORMAT, IMAGES[0]],
        ["docker", "image", "inspect", "--format", node_images.PLATFORM_FORMAT, IMAGES[1]],
        ["docker", "image", "save", "--platform", "linux/arm64/v8", "--output", archive, *IMAGES],
        ["kind", "load", "image-archive", "--name", "medpubsub", archive],
        ["docker", "image", "rm", *IMAGES],
    ]
    assert not any(call[1:3] == ["load", "docker-image"] for call in calls)
    assert not list((tmp_path / "cache" / "kind" / "medpubsub").glob("*.tar"))  # removed
