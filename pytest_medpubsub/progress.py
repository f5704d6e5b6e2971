"""Progress for long work (JVM start, Maven, cluster creation, drains), one style everywhere.

On a terminal a rich spinner shows the step while it runs; elsewhere (CI logs, pytest) one line
is written when the step starts and one when it ends, with its duration. The pytest plugin points
`sink` at its terminal reporter so that steps show even while output is captured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

_console = Console(stderr=True, highlight=False)

# Where plain lines go when there is no interactive terminal; the plugin replaces it.
sink: Callable[[str], None] | None = None


def say(message: str) -> None:
    if sink is not None:
        sink(message)
    else:
        _console.print(message, markup=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show `message` while the block runs, then how long it took (or that it failed)."""
    started = time.monotonic()
    interactive = sink is None and _console.is_terminal
    try:
        if interactive:
            with _console.status(message):
                yield
        else:
            say(f"{message} ...")
            yield
    except BaseException:
        say(f"{message}: failed after {time.monotonic() - started:.1f} s")
        raise
    say(f"{message}: done in {time.monotonic() - started:.1f} s")


def is_interactive() -> bool:
    return sink is None and _console.is_terminal and sys.stdin.isatty()
