"""Chaos Toolkit actions on the dispatcher of the local system (the dispatcher design).

The dispatcher is a child process of the system's owner (`medpubsub up --design dispatcher` or
the pytest platform), which starts it again when it dies, as Kubernetes restarts a Deployment's
pod. Killing it with SIGKILL leaves orders dispatched but not committed and makers it was
watching: its next life reads those orders again and watches those makers; none is lost and
none is made twice.
"""

# No `from __future__ import annotations`: Chaos Toolkit reads these signatures at runtime.

import os
import signal
import time
from typing import Any

from pytest_medpubsub import processes
from pytest_medpubsub.chaos.target import NotApplicable, local_state, logger, runs
from pytest_medpubsub.waiting import wait_until

__all__ = ["kill_dispatcher", "wait_for_dispatcher"]

DISPATCHER_MARKERS = ("medpubsub", "dispatcher")


def kill_dispatcher(state_file: str | None = None) -> dict[str, Any]:
    """SIGKILL the local system's dispatcher; returns its pid and when it was killed.

    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    Raises `NotApplicable` when the system runs no dispatcher (the ScaledJob design).
    """
    pid = _dispatcher_pid(state_file)
    if pid is None:
        raise NotApplicable("the local system runs no dispatcher (is it the scaledjob design?)")
    os.kill(pid, signal.SIGKILL)
    killed_at_ns = time.time_ns()
    logger.info("killed the dispatcher (pid %d)", pid)
    return {"pid": pid, "killed_at_ns": killed_at_ns}


def wait_for_dispatcher(
    timeout_s: float = 60.0, not_pid: int | None = None, state_file: str | None = None
) -> dict[str, Any]:
    """Wait until a dispatcher runs again (another process than `not_pid`); its pid and how long
    it took.

    `timeout_s`: how long to wait for the system's owner to start it again.
    `not_pid`: the pid of the dispatcher that was killed (default: any running one will do).
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    started = time.monotonic()
    pid = wait_until(
        lambda: _dispatcher_pid(state_file),
        lambda found: found is not None and found != not_pid,
        timeout_s,
        "the dispatcher to run again",
        interval_s=0.1,
    )
    took_s = round(time.monotonic() - started, 2)
    logger.info("the dispatcher runs again (pid %s) after %.2f s", pid, took_s)
    return {"pid": pid, "waited_s": took_s}


def _dispatcher_pid(state_file: str | None) -> int | None:
    """The dispatcher among the owner's children (it is not in the state file's lists)."""
    owner = local_state(state_file).owner_pid
    return next(
        (pid for pid in processes.children_of(owner) if runs(pid, *DISPATCHER_MARKERS)), None
    )
