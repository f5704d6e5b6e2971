"""Docker: needed to build the images and to load the harness's images. When the engine is
installed but not running, `up` starts `dockerd` itself and records its pid, so that `down`
stops it again (and only then: a Docker someone else started is left alone)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pytest_medpubsub import processes
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.waiting import WaitTimeout, wait_until

START_TIMEOUT_S = 90.0


def answers() -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=20,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_running(log_path: Path) -> int | None:
    """Make sure a Docker engine answers; return the pid of the dockerd started here, if any."""
    if answers():
        return None
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        raise HereError("the cluster needs Docker to build its images; install docker.io")
    daemon = processes.spawn(["dockerd"], log_path=log_path)
    try:
        wait_until(
            lambda: daemon.poll() is None and answers(),
            bool,
            START_TIMEOUT_S,
            f"dockerd (pid {daemon.pid}) to answer `docker info`",
            interval_s=1.0,
        )
    except WaitTimeout as error:
        processes.stop(daemon)
        raise HereError(f"{error} (log: {log_path})") from None
    return daemon.pid
