"""After a test run: fail loudly if a process the run started is still running.

`make test` runs this after pytest. A leftover process means a fixture or command did not stop
what it started; it is listed (pid and command) and exit status 1 makes the run fail.

A process is the run's when its environment carries the run's id (`MEDPUBSUB_RUN_ID`, given to
every process the harness starts and inherited by theirs), whatever its command line: a Java
broker, a Locust worker, a maker a dispatcher started. A process without any run id is matched by
its command line instead (a service started by hand, or from an environment that dropped the id),
when it runs in this checkout. A process of another run, or of another checkout on the same
machine (its tests may be running right now), is not ours.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from pytest_medpubsub import processes

# A service or harness command (`python -m medpubsub medicine`, `.venv/bin/medpubsub up`), or an
# embedded broker: `kafka.Kafka` with medpubsub's jar cache on its classpath.
_SERVICE = re.compile(
    r"\bmedpubsub (patient|medicine|dispatcher|make-order|kafka|up|demo)\b"
    r"|\blocust\b.*\bload/patients\.py\b"
)
_BROKER = re.compile(r"\bkafka\.Kafka\b")


def is_ours(command: str) -> bool:
    """Whether a command line is one of the system's services, the harness or its broker."""
    return bool(_SERVICE.search(command)) or (
        bool(_BROKER.search(command)) and "medpubsub" in command
    )


def belongs(
    environment: dict[str, str] | None, command: str, run: str | None, in_checkout: bool
) -> bool:
    """Whether a process with this environment (None: unreadable) and command line, running in
    this checkout or not, is the run's. With no `run` given, any run id counts."""
    theirs = environment.get(processes.RUN_ID) if environment is not None else None
    if theirs is not None:
        return run is None or theirs == run
    return in_checkout and is_ours(command)


def leftovers(run: str | None = None, checkout: Path | None = None) -> list[tuple[int, str]]:
    """(pid, command line) of every process of `run` except this one and its ancestors (which
    carry the id too: make, the shell). `checkout` (default: the current directory) is where a
    process without a run id must run to count."""
    here = (checkout or Path.cwd()).resolve()
    mine = processes.ancestors(os.getpid())
    found = []
    for pid in processes.all_pids():
        if pid in mine:
            continue
        command = " ".join(processes.command_line(pid))
        if not command:
            continue
        directory = processes.working_directory(pid)
        in_checkout = directory is not None and directory.is_relative_to(here)
        if belongs(processes.environment_of(pid), command, run, in_checkout):
            found.append((pid, command))
    return found


def main() -> int:
    run = os.environ.get(processes.RUN_ID)
    found = leftovers(run)
    if not found:
        print(f"nothing of run {run or '(any)'} is left running")
        return 0
    print(f"{len(found)} process(es) of ours are still running after the run:", file=sys.stderr)
    for pid, command in found:
        print(f"  {pid}: {command[:200]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
