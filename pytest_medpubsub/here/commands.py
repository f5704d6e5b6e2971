"""Running the host's tools: bounded by a timeout, failing as one plain sentence.

Everything here ends in a `HereError` whose message says which command failed and the last
lines it printed, so `make cluster-here` never shows a traceback and never hangs on a registry
that stopped answering: network steps are retried with a message saying so.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_medpubsub import progress


class HereError(Exception):
    """A step of the cluster failed; the message is one sentence for the user."""


def run(
    args: Sequence[str],
    timeout_s: float,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `args` to completion within `timeout_s`, capturing its output as text."""
    try:
        result = subprocess.run(
            list(args),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            input=input_bytes.decode() if input_bytes is not None else None,
            text=True,
        )
    except FileNotFoundError:
        raise HereError(f"`{args[0]}` is not installed (needed for `{_show(args)}`)") from None
    except subprocess.TimeoutExpired as error:
        raise HereError(
            f"`{_show(args)}` did not finish within {timeout_s:g} s; it last printed: "
            f"{_tail(_text(error.stderr) or _text(error.stdout))}"
        ) from None
    if check and result.returncode != 0:
        raise HereError(
            f"`{_show(args)}` failed with exit status {result.returncode}: "
            f"{_tail(result.stderr or result.stdout)}"
        )
    return result


def run_logged(
    args: Sequence[str],
    timeout_s: float,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Run a long command with its output going to `log_path` (a Go build prints a lot)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            result = subprocess.run(
                list(args),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise HereError(f"`{args[0]}` is not installed (needed for `{_show(args)}`)") from None
        except subprocess.TimeoutExpired:
            raise HereError(
                f"`{_show(args)}` did not finish within {timeout_s:g} s; its log ends with: "
                f"{_tail(_read_tail(log_path))} (full log: {log_path})"
            ) from None
    if result.returncode != 0:
        raise HereError(
            f"`{_show(args)}` failed with exit status {result.returncode}: "
            f"{_tail(_read_tail(log_path))} (full log: {log_path})"
        )


def retried(
    args: Sequence[str],
    timeout_s: float,
    log_path: Path,
    *,
    what: str,
    attempts: int = 3,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """`run_logged`, retried: for steps that talk to a package registry, which can be slow or
    briefly fail; each retry is announced, and the last failure is the error."""
    for attempt in range(1, attempts + 1):
        try:
            run_logged(args, timeout_s, log_path, env=env, cwd=cwd)
            return
        except HereError as error:
            if attempt == attempts:
                raise HereError(f"{what} failed {attempts} times; the last time: {error}") from None
            progress.say(f"{what} failed (attempt {attempt} of {attempts}), retrying: {error}")
            time.sleep(5 * attempt)


def _show(args: Sequence[str]) -> str:
    shown = " ".join(args)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def _tail(output: str, lines: int = 3) -> str:
    kept = [line.strip() for line in output.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept) if kept else "nothing"


def _read_tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - 4000))
            return log.read().decode(errors="replace")
    except OSError:
        return ""
