"""Child processes the harness starts, and stopping them by pid: SIGTERM, then SIGKILL.

Each child gets its own process group, so a Ctrl-C in the terminal reaches the harness only and
the harness decides the order in which things stop (patients, then makers, then the broker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


def spawn(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `args` in its own session with stdout and stderr going to `log_path` (or nowhere)."""
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    try:
        return subprocess.Popen(
            list(args),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if not isinstance(log, int):
            log.close()  # the child has its own copy of the descriptor


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> int | None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL; return the exit status (None if unknown)."""
    if process.poll() is not None:
        return process.returncode
    _signal(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        return kill(process)


def kill(process: subprocess.Popen[bytes]) -> int | None:
    """SIGKILL now (a crash, as chaos wants it) and reap the process."""
    if process.poll() is None:
        _signal(process.pid, signal.SIGKILL)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
        return None


def stop_all(processes: Sequence[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """Stop many at once: SIGTERM to all first so their grace periods overlap."""
    for process in processes:
        if process.poll() is None:
            _signal(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill(process)


def stop_pid(pid: int, grace_s: float = 10.0) -> None:
    """Stop a process that is not our child (a pid read from a state file)."""
    if not is_alive(pid):
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
