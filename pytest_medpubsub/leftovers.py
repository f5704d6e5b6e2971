"""After a test run: fail loudly if a broker, patient, maker or Locust of ours is still running.

`make test` runs this after pytest. A leftover process means a fixture or command did not stop
what it started; it is listed (pid and command) and exit status 1 makes the run fail.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# A service or harness command (`python -m medpubsub medicine`, `.venv/bin/medpubsub up`), or an
# embedded broker: `kafka.Kafka` with medpubsub's jar cache on its classpath.
_SERVICE = re.compile(
    r"\bmedpubsub (patient|medicine|kafka|up|demo)\b|\blocust\b.*\bload/patients\.py\b"
)
_BROKER = re.compile(r"\bkafka\.Kafka\b")


def is_ours(command: str) -> bool:
    return bool(_SERVICE.search(command)) or (
        bool(_BROKER.search(command)) and "medpubsub" in command
    )


def leftovers() -> list[tuple[int, str]]:
    """(pid, command line) of every process of ours except this one and its ancestors."""
    mine = _ancestors(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if is_ours(command):
            found.append((int(entry.name), command))
    return found


def _ancestors(pid: int) -> set[int]:
    chain = {pid}
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
        chain.add(pid)
    return chain


def main() -> int:
    found = leftovers()
    if not found:
        print("no broker, patient or maker left running")
        return 0
    print(f"{len(found)} process(es) of ours are still running after the run:", file=sys.stderr)
    for pid, command in found:
        print(f"  {pid}: {command[:200]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
