"""What the foreground commands (`medpubsub kafka | up | demo`) share: the local system with its
patients and an observer, the live status view, stopping on SIGTERM / Ctrl-C, and one-line
failures with their exit status (2: a missing prerequisite, 1: the platform failed).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live

from pytest_medpubsub import designs, progress
from pytest_medpubsub.kafka.jars import KafkaUnavailable
from pytest_medpubsub.kafka.security import as_identity
from pytest_medpubsub.live import status_table
from pytest_medpubsub.observer import Mark, Observer, PlatformSample
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem
from pytest_medpubsub.project import ProjectNotFound

console = Console()
# Errors are one line each, whatever the terminal width (they are read by people and by tests).
errors = Console(stderr=True, soft_wrap=True, highlight=False)


@contextlib.contextmanager
def local_system(
    arguments: argparse.Namespace, state_file: Path | None
) -> Iterator[tuple[LocalSystem, Observer]]:
    """Kafka, the local platform with N patients, and an observer; all stopped on exit."""
    from pytest_medpubsub.kafka.broker import running_broker

    if arguments.patients < 0:
        raise PlatformError(f"--patients must be 0 or more, not {arguments.patients}")
    run_dir = Path(".medpubsub") / "run"
    with running_broker(
        external=arguments.kafka, data_dir=arguments.data_dir, secure=arguments.secure
    ) as (kafka, broker):
        platform = designs.design(arguments.design).local_platform(
            LocalRun(kafka, run_dir, broker=broker, state_file=state_file)
        )
        platform.start()
        try:
            observer_kafka = as_identity(kafka, platform.credentials, "observer")
            observer = Observer(observer_kafka, sampler=lambda: sample(platform)).start()
            try:
                platform.scale_patients(arguments.patients)
                yield platform, observer
            finally:
                platform.scale_patients(0)
                observer.stop()
        finally:
            platform.stop()


def sample(platform: LocalSystem) -> PlatformSample:
    return PlatformSample(
        patients=platform.patients(), jobs=platform.medicine_jobs(), lag=platform.lag()
    )


def watch(
    bootstrap: str,
    observer: Observer,
    since: Mark,
    stop: threading.Event,
    deadline: float | None,
) -> None:
    """Refresh the status view every second until `stop` is set or the deadline passes."""

    def remaining() -> float:
        return 1.0 if deadline is None else min(1.0, deadline - time.monotonic())

    if not console.is_terminal:
        while not stop.is_set() and remaining() > 0:
            stop.wait(remaining())
            summary = observer.summary(since=since)
            last = summary.timeline[-1] if summary.timeline else None
            progress.say(
                f"orders {summary.orders} complete {summary.complete_orders} tabs {summary.tabs}"
                f" makers {last.jobs if last else '-'} lag {last.lag if last else '-'}"
            )
        return
    with Live(console=console, refresh_per_second=2) as live:
        while not stop.is_set() and remaining() > 0:
            live.update(status_table(observer.summary(since=since), bootstrap, "medpubsub"))
            stop.wait(remaining())


def failing_cleanly(command: str, work: Callable[[], None]) -> int:
    """Run `work`; a missing prerequisite or a platform problem is one line and exit 2 / 1."""
    try:
        work()
    except (KafkaUnavailable, ProjectNotFound) as error:
        errors.print(f"medpubsub {command}: {error}", markup=False)
        return 2
    except PlatformError as error:
        errors.print(f"medpubsub {command}: {error}", markup=False)
        return 1
    return 0


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a foreground command stops cleanly."""
    stop = threading.Event()

    def handler(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
