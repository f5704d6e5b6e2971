"""A long command-line call (`kind create cluster`, `kind delete cluster`) bounded by a timeout
that, when it runs out, says what was last seen instead of only "timed out".

`commands.run` kills only the process it started; `kind` runs `docker` and `kubeadm` under it,
and a hang is usually in one of those. So the command runs in a session of its own (its pid is
its process group), its output goes to a log file as it comes, and on timeout the whole group is
stopped by that pid: SIGTERM, a grace period, then SIGKILL. The error is one sentence: the
command, the timeout, the command's last line of output, what `seen()` reports (for kind: the
node containers and their state) and where the full output is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_medpubsub import processes
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.commands import tail

GRACE_S = 5.0


def run_watched(
    args: Sequence[str],
    *,
    timeout_s: float,
    log: Path,
    seen: Callable[[], str] | None = None,
    grace_s: float = GRACE_S,
) -> None:
    """Run `args` with its output in `log`; `PlatformError` when it fails or outlives
    `timeout_s` (then its process group is stopped first, and `seen()` adds what it finds)."""
    shown = " ".join(args)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")  # this call's output only, not an earlier run's
    try:
        process = processes.spawn(args, log_path=log)
    except FileNotFoundError:
        raise PlatformError(f"`{args[0]}` is not installed (needed for `{shown}`)") from None
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(process, grace_s)
        observed = _observe(seen)
        raise PlatformError(
            f"`{shown}` did not finish within {timeout_s:g} s and was stopped; its last output "
            f"was {last_line(_read(log))!r}{observed} (full output: {log})"
        ) from None
    except BaseException:  # Ctrl-C: nothing of ours is left running
        stop_group(process, grace_s)
        raise
    if returncode != 0:
        raise PlatformError(
            f"`{shown}` failed with exit status {returncode} (full output: {log}):\n"
            f"{tail(_read(log))}"
        )


def stop_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the process group `process` leads (by its pid), then SIGKILL after `grace_s`;
    the group's other members (kind's `docker` calls) get the same signals."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    _signal_group(process.pid, signal.SIGKILL)  # children that outlived their leader
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)


def last_line(output: str) -> str:
    """The last non-blank line of `output`, stripped ("nothing" when there is none)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "nothing"


def _observe(seen: Callable[[], str] | None) -> str:
    if seen is None:
        return ""
    try:
        observed = seen().strip()
    except Exception as error:  # what was seen must not hide the timeout
        observed = f"(could not look: {error})"
    return f"; {observed}" if observed else ""


def _read(log: Path) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
