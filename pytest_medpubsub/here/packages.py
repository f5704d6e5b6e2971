"""Debian packages the cluster needs: installed with apt-get when missing (CI starts fresh)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here.commands import retried

APT_TIMEOUT_S = 900.0


def missing(wanted: Mapping[str, str], present: Callable[[str], bool]) -> list[str]:
    """The packages of `wanted` (package -> the command or file it provides) whose command or
    file is not `present`."""
    return [package for package, probe in wanted.items() if not present(probe)]


def is_present(probe: str) -> bool:
    """An absolute path must exist; a bare name must be a command on PATH (or in sbin, which a
    user's PATH may lack)."""
    if probe.startswith("/"):
        return Path(probe).exists()
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(probe, path=path) is not None


def ensure(wanted: Mapping[str, str], log: Path) -> list[str]:
    """Install what is missing of `wanted`; return what was installed."""
    needed = missing(wanted, is_present)
    if not needed:
        return []
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with progress.step(f"installing Debian packages {' '.join(needed)}"):
        retried(["apt-get", "update", "-q"], APT_TIMEOUT_S, log, what="apt-get update", env=env)
        retried(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *needed],
            APT_TIMEOUT_S,
            log,
            what=f"installing {' '.join(needed)}",
            env=env,
        )
    return needed
