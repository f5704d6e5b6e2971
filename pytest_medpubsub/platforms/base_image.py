"""The base the service images build on: the official Python image when it can be had quickly,
else a Debian bookworm base of our own, built here.

The Dockerfile takes the base as `ARG BASE_IMAGE` (default: the official image), so the choice
never edits it. The stand-in is Debian bookworm from `debootstrap --variant=minbase` with
Debian's python3 (3.11) and pip, `python` pointing at python3 (the Dockerfile runs `python`),
this machine's CA bundle (pip inside `docker build` verifies PyPI with it, whatever proxy or
private CA this network uses) and without PEP 668's EXTERNALLY-MANAGED marker (the image is ours
to install into; there is no system Python to protect). It is imported into Docker under our own
name, never an upstream tag, so nobody mistakes it for the official image, and is reused while
its recipe version stays the same.
"""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.platforms.base import PlatformError, PlatformUnavailable
from pytest_medpubsub.platforms.commands import pipe, probe, run, which

RECIPE_VERSION = "v1"
"""Bump when the recipe below changes: the cached base is found by this tag."""
LOCAL_BASE = f"medpubsub/base:bookworm-{RECIPE_VERSION}"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "python-is-python3")
MIRROR_VARIABLE = "MEDPUBSUB_DEBIAN_MIRROR"
"""Optional Debian mirror for debootstrap (its own default otherwise)."""
PULL_TIMEOUT_S = 60.0
DEBOOTSTRAP_TIMEOUT_S = 1200.0
IMPORT_TIMEOUT_S = 300.0
INSPECT_TIMEOUT_S = 15.0
# Not needed to run Python and pip; about a third of the base's size.
SLIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
           "usr/share/info", "usr/share/locale")  # fmt: skip


@dataclass(frozen=True)
class Base:
    """The base image chosen and how it was had (said to the user, written to the logs)."""

    image: str
    how: str

    def __str__(self) -> str:
        return f"{self.image} ({self.how})"


def choose(official: str, log_dir: Path, given: str | None = None) -> Base:
    """`given` if any; else `official` when Docker has it or pulls it within `PULL_TIMEOUT_S`;
    else the local Debian base, built first when it is not cached."""
    if given:
        return Base(given, "given as BASE_IMAGE")
    if is_present(official):
        return Base(official, "the official base, already in Docker")
    with progress.step(f"trying to pull the official base {official}"):
        pulled = probe(["docker", "pull", "--quiet", official], timeout_s=PULL_TIMEOUT_S)
    if pulled is not None and pulled.ok:
        return Base(official, "the official base, pulled")
    why = "no answer" if pulled is None else (pulled.stderr.strip().splitlines() or ["?"])[-1]
    progress.say(f"{official} cannot be pulled ({why}); using a local Debian {SUITE} base")
    if is_present(LOCAL_BASE):
        return Base(LOCAL_BASE, f"local Debian {SUITE} base, built earlier; {official} unpullable")
    build_local_base(log_dir)
    return Base(LOCAL_BASE, f"local Debian {SUITE} base, built now; {official} unpullable")


def is_present(image: str) -> bool:
    outcome = probe(["docker", "image", "inspect", image], timeout_s=INSPECT_TIMEOUT_S)
    return outcome is not None and outcome.ok


def build_local_base(log_dir: Path) -> None:
    """debootstrap a bookworm root file system, finish it for pip, import it as `LOCAL_BASE`."""
    if os.geteuid() != 0:
        raise PlatformUnavailable(
            f"the official base cannot be pulled and building the local {SUITE} base needs root "
            "(debootstrap makes device nodes and runs a chroot); run as root, or pass "
            "BASE_IMAGE=<an image with Python 3.11 and pip>."
        )
    if which("debootstrap") is None:
        raise PlatformUnavailable(
            f"the official base cannot be pulled and debootstrap is not installed to build a "
            f"local {SUITE} base; install it (apt-get install debootstrap) or pass "
            "BASE_IMAGE=<an image with Python 3.11 and pip>."
        )
    work = Path(tempfile.mkdtemp(prefix="medpubsub-base-"))
    rootfs = work / "rootfs"
    try:
        mirror = os.environ.get(MIRROR_VARIABLE)
        log = log_dir / "debootstrap.log"
        with progress.step(f"building {LOCAL_BASE} with debootstrap (log in {log})"):
            run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                 str(rootfs), *([mirror] if mirror else [])],
                timeout_s=DEBOOTSTRAP_TIMEOUT_S,
                log=log,
            )  # fmt: skip
        versions = _finish(rootfs)
        with progress.step(f"importing {LOCAL_BASE} into Docker ({versions})"):
            pipe(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                ["docker", "import", *_image_config(versions), "-", LOCAL_BASE],
                timeout_s=IMPORT_TIMEOUT_S,
                log=log_dir / "docker-import-base.log",
            )
    finally:
        _remove(work)


def _finish(rootfs: Path) -> str:
    """Make the root file system ready for the Dockerfile's pip; its Debian and Python versions."""
    bundle = host_ca_bundle()
    target = rootfs / "etc/ssl/certs/ca-certificates.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, target)
    markers = list(rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"))
    if not markers:
        raise PlatformError(f"no EXTERNALLY-MANAGED marker under {rootfs}: is python3 installed?")
    for marker in markers:
        marker.unlink()
    for folder in SLIMMED:
        for entry in (rootfs / folder).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.name != "lock":
                entry.unlink()
    debian = (rootfs / "etc/debian_version").read_text(encoding="utf-8").strip()
    python = run(["chroot", str(rootfs), "python3", "--version"], timeout_s=30).strip()
    pip = run(["chroot", str(rootfs), "python3", "-m", "pip", "--version"], timeout_s=60).split()
    return f"Debian {debian}, {python}, pip {pip[1] if len(pip) > 1 else '?'}"


def host_ca_bundle() -> Path:
    """This machine's CA bundle: what its own TLS clients trust for PyPI."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise PlatformUnavailable(
        "this machine has no CA bundle (SSL_CERT_FILE or OpenSSL's default), which the local "
        "base needs for pip to verify PyPI inside docker build."
    )


def _image_config(versions: str) -> list[str]:
    """What `docker import` cannot take from a tarball: environment, command and labels."""
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
        "LABEL org.opencontainers.image.title=medpubsub-base",
        f"LABEL org.opencontainers.image.version={RECIPE_VERSION}",
        f'LABEL org.opencontainers.image.description="debootstrap --variant=minbase {SUITE} '
        f'with {" ".join(PACKAGES)}: {versions}"',
        f"LABEL org.opencontainers.image.created={created}",
    ]
    return [argument for change in changes for argument in ("--change", change)]


def _remove(work: Path) -> None:
    """Delete the build folder, but never through a mount debootstrap left behind (an
    interrupted run can leave /proc or /dev mounted inside): unmount those first, or keep it."""
    for mount_point in sorted(_mounts_below(work), key=len, reverse=True):
        probe(["umount", "--lazy", mount_point], timeout_s=30)
    left = _mounts_below(work)
    if left:
        progress.say(f"kept {work}: still mounted there: {', '.join(left)}")
        return
    shutil.rmtree(work, ignore_errors=True)


def _mounts_below(folder: Path) -> list[str]:
    prefix = f"{folder.resolve()}/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    return [point for point in points if point.startswith(prefix)]
