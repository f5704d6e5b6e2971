"""Debian packages the cluster needs: installed with apt-get when missing (CI starts fresh)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here.commands import retried, run

APT_TIMEOUT_S = 900.0


def missing(dpkg_query_text: str, wanted: Sequence[str]) -> list[str]:
    """The packages of `wanted` not reported "install ok installed" by
    `dpkg-query -W -f='${Package} ${Status}\\n'` (a package dpkg never heard of prints nothing)."""
    installed = set()
    for line in dpkg_query_text.splitlines():
        name, _, status = line.partition(" ")
        if status.strip() == "install ok installed":
            installed.add(name.split(":")[0])  # drop an architecture qualifier
    return [package for package in wanted if package not in installed]


def ensure(wanted: Sequence[str], log: Path) -> list[str]:
    """Install what is missing of `wanted`; return what was installed."""
    query = run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *wanted], 60, check=False).stdout
    needed = missing(query, wanted)
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
