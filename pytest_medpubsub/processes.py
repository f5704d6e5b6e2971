"""Child processes the harness starts, stopping them by pid (SIGTERM, then SIGKILL), and what
/proc says about a process.

Each child gets its own process group, so a Ctrl-C in the terminal reaches the harness only and
the harness decides the order in which things stop (patients, then makers, then the broker).

Every child carries the run's id in `MEDPUBSUB_RUN_ID` (and so do their children, which inherit
it): `leftovers` finds what a run left behind by that id, whatever its command line, and never
mistakes another run's broker on the same machine for ours.

A process's /proc is read through psutil here and nowhere else in the harness (the services, which
must not depend on the harness, keep their own one-line checks); the machine-wide CPU counters
are host_cpu.py's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

RUN_ID = "MEDPUBSUB_RUN_ID"
"""The environment variable naming the run a process belongs to."""


def run_id() -> str:
    """This run's id: the one inherited (make sets it for all of `make test`), else a new one.

    It is put into our own environment, so any process started from here, with `spawn` or not,
    inherits it.
    """
    return os.environ.setdefault(RUN_ID, f"{os.getpid()}-{secrets.token_hex(4)}")


def spawn(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `args` in its own session with stdout and stderr going to `log_path` (or nowhere).

    The child gets the run id (`RUN_ID`) even when `env` is a curated environment.
    """
    environment = {**(os.environ if env is None else env), RUN_ID: run_id()}
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    try:
        return subprocess.Popen(
            list(args),
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if not isinstance(log, int):
            log.close()  # the child has its own copy of the descriptor


# The lowest CPU priority: a load generator's processes yield to the system under test.
LOWEST_PRIORITY = 19


def yield_cpu(pid: int) -> None:
    """Give the process `pid`, a session of its own (`spawn`), the lowest CPU priority.

    Linux schedules each session as one group when autogroup is on (its default on desktops and
    many servers): the nice value of a process then counts only inside its own session, and 60
    patients each in a session of their own weigh as much as 60 brokers. So the session's
    autogroup is given the nice value, and the process itself too: a process in a CPU cgroup
    other than the root (a container, a CI runner's slice) is weighed by its own nice value, and
    its autogroup file is then empty or has no effect. Raising a nice value needs no privilege.
    Best effort: the process may already be gone.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, LOWEST_PRIORITY)
    with contextlib.suppress(OSError):
        autogroup = Path(f"/proc/{pid}/autogroup")
        # Empty when the process is in the default group (no session of its own under autogroup).
        if autogroup.read_text().strip():
            autogroup.write_text(str(LOWEST_PRIORITY))


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
    """Whether `pid` runs (a zombie, ended but not reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def command_line(pid: int) -> list[str]:
    """The arguments `pid` was started with; empty when it is gone, a zombie or not ours to read."""
    try:
        return list(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def environment_of(pid: int) -> dict[str, str] | None:
    """`pid`'s environment as it was started, or None when it cannot be read."""
    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def working_directory(pid: int) -> Path | None:
    """`pid`'s current directory, or None when it cannot be read."""
    try:
        return Path(psutil.Process(pid).cwd())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def children_of(parent: int) -> list[int]:
    """The pids whose parent is `parent` (direct children only)."""
    try:
        return [child.pid for child in psutil.Process(parent).children()]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def ancestors(pid: int) -> set[int]:
    """`pid` and every process above it, up to init."""
    try:
        return {pid, *(parent.pid for parent in psutil.Process(pid).parents())}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {pid}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of `pid` so far, or None when it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return float(times.user + times.system)


def all_pids() -> Iterator[int]:
    """Every pid on the machine now."""
    return iter(psutil.pids())


def all_command_lines() -> dict[int, list[str]]:
    """pid -> arguments of every process on the machine now, in one pass over /proc.

    A kernel thread's list is empty, as is one that cannot be read; a process that ends during
    the pass is left out.
    """
    return {
        process.info["pid"]: list(process.info["cmdline"] or ())
        for process in psutil.process_iter(["pid", "cmdline"])
    }


def all_parents() -> dict[int, int]:
    """pid -> parent pid of every process on the machine now (one pass, as above)."""
    return {
        process.info["pid"]: process.info["ppid"]
        for process in psutil.process_iter(["pid", "ppid"])
        if process.info["ppid"] is not None
    }


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
