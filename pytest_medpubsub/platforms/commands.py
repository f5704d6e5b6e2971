"""Running the command-line tools a cluster platform drives (docker, kind, minikube, kubectl).

Every call has a timeout, and a failure becomes a `PlatformError` whose message names the command
and ends with the tool's own last words, so that a red test says what broke without a traceback
into subprocess internals.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_medpubsub.platforms.base import PlatformError

STDERR_TAIL_LINES = 15


@dataclass(frozen=True)
class Outcome:
    """What a command that may fail did (see `probe`)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    args: Sequence[str],
    *,
    timeout_s: float,
    stdin: str | None = None,
    log: Path | None = None,
) -> str:
    """Run `args` and return its stdout; raise `PlatformError` on failure or timeout.

    With `log`, stdout and stderr go to that file instead (a `docker build` is long and loud) and
    the error quotes its tail.
    """
    shown = " ".join(args)
    try:
        if log is None:
            result = subprocess.run(
                list(args),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            output, errors = result.stdout, result.stderr
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w", encoding="utf-8") as sink:
                result = subprocess.run(
                    list(args),
                    input=stdin,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout_s,
                    check=False,
                )
            output, errors = "", log.read_text(encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        raise PlatformError(f"`{shown}` did not finish within {timeout_s:g} s") from None
    except FileNotFoundError:
        raise PlatformError(f"`{args[0]}` is not installed (needed for `{shown}`)") from None
    if result.returncode != 0:
        where = f" (full output: {log})" if log is not None else ""
        raise PlatformError(
            f"`{shown}` failed with exit status {result.returncode}{where}:\n{tail(errors)}"
        )
    return output


def pipe(producer: Sequence[str], consumer: Sequence[str], *, timeout_s: float, log: Path) -> None:
    """`producer | consumer` (a stream too large to hold, such as `docker save`), both bounded by
    `timeout_s` and killed when it passes; a failure names the side that failed and quotes its
    last words (the consumer's output is in `log`)."""
    shown = f"{' '.join(producer)} | {' '.join(consumer)}"
    log.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with log.open("w", encoding="utf-8") as sink, tempfile.TemporaryFile() as producer_errors:
        try:
            source = subprocess.Popen(
                list(producer), stdout=subprocess.PIPE, stderr=producer_errors
            )
        except FileNotFoundError:
            raise PlatformError(
                f"`{producer[0]}` is not installed (needed for `{shown}`)"
            ) from None
        assert source.stdout is not None
        try:
            target = subprocess.Popen(
                list(consumer), stdin=source.stdout, stdout=sink, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            source.kill()
            source.wait()
            raise PlatformError(
                f"`{consumer[0]}` is not installed (needed for `{shown}`)"
            ) from None
        finally:
            source.stdout.close()  # the consumer holds the pipe: the producer sees it break
        try:
            target.wait(timeout=max(0.0, deadline - time.monotonic()))
            source.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for process in (source, target):
                process.kill()
                process.wait()
            raise PlatformError(f"`{shown}` did not finish within {timeout_s:g} s") from None
        producer_errors.seek(0)
        producer_tail = tail(producer_errors.read().decode(errors="replace"))
    if source.returncode != 0:
        raise PlatformError(
            f"`{' '.join(producer)}` failed with exit status {source.returncode}:\n{producer_tail}"
        )
    if target.returncode != 0:
        raise PlatformError(
            f"`{shown}` failed with exit status {target.returncode} (full output: {log}):\n"
            f"{tail(log.read_text(encoding='utf-8', errors='replace'))}"
        )


def probe(args: Sequence[str], *, timeout_s: float) -> Outcome | None:
    """Run a command whose failure is an answer (is the engine up? does the cluster exist?);
    None when it is not installed or does not answer within `timeout_s`."""
    try:
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return None
    return Outcome(result.returncode, result.stdout, result.stderr)


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def which(tool: str) -> str | None:
    return shutil.which(tool)
