"""A Docker engine for `make images`: used when it runs, started when it is installed but not.

Only the image build starts one (a machine with Docker installed but no init system to start it,
such as a CI VM); the cluster platforms only check for it and say so. The engine is left running
afterwards, since the images live in it and the next steps (loading them into a cluster) need it;
the message says how to stop it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_medpubsub import processes, progress
from pytest_medpubsub.platforms.base import PlatformUnavailable
from pytest_medpubsub.platforms.commands import probe, which
from pytest_medpubsub.waiting import WaitTimeout, wait_for

START_TIMEOUT_S = 60.0


def is_running() -> bool:
    outcome = probe(["docker", "info", "--format", "{{.ServerVersion}}"], timeout_s=15)
    return outcome is not None and outcome.ok and bool(outcome.stdout.strip())


def ensure_running(log: Path) -> int | None:
    """Nothing when the engine answers; else start `dockerd` (logging to `log`) and wait until
    it answers. The pid of the engine started here, or None."""
    if which("docker") is None:
        raise PlatformUnavailable(
            "docker is not installed (not on PATH); images are built with it."
        )
    if is_running():
        return None
    if which("dockerd") is None:
        raise PlatformUnavailable(
            "The Docker engine is not running and dockerd is not installed to start it; start "
            "Docker and retry."
        )
    if os.geteuid() != 0:
        raise PlatformUnavailable(
            "The Docker engine is not running, and only root can start dockerd; start Docker "
            "(or run as root) and retry."
        )
    with progress.step(f"the Docker engine is not running: starting dockerd (log in {log})"):
        engine = processes.spawn(["dockerd"], log_path=log)

        def answers() -> bool:
            if engine.poll() is not None:
                raise _Exited(f"it exited with status {engine.returncode}")
            return is_running()

        try:
            wait_for(answers, START_TIMEOUT_S, "dockerd to answer", interval_s=0.5)
        except (WaitTimeout, _Exited) as error:
            processes.stop(engine, grace_s=10)
            raise PlatformUnavailable(
                f"dockerd did not start ({error}); see {log}, start Docker yourself and retry."
            ) from None
    progress.say(
        f"started the Docker engine (dockerd pid {engine.pid}); it keeps running for the next "
        f"steps: stop it with `kill {engine.pid}`"
    )
    return engine.pid


class _Exited(Exception):
    pass
