"""What an experiment acts on: the local system's state file, or a Kafka bootstrap address.

Local actions find pids in `.medpubsub/local.json`, which its owner rewrites every half second.
A pid read there may belong to a process that has exited since (and, rarely, to a new process
that got the same pid), so every signal is preceded by a look at `/proc/<pid>/cmdline`: chaos must
never kill something that is not part of the system.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes, state
from pytest_medpubsub.kafka.security import Credentials

CREDENTIALS_FILE_ENV = "MEDPUBSUB_CREDENTIALS_FILE"
# The owner rewrites the state file every 0.5 s; older than this, it is not looking after it.
STALE_AFTER_S = 10.0

# Experiments log through Chaos Toolkit's logger, so the lines land in chaostoolkit.log.
logger = logging.getLogger("chaostoolkit")


class NotApplicable(RuntimeError):
    """The action does not apply to this system (e.g. no embedded broker to kill)."""


def state_path(state_file: str | None) -> Path | None:
    """`state_file` as a path; None (or "") means `state.default_path()`."""
    return Path(state_file) if state_file else None


def local_state(state_file: str | None = None) -> state.LocalState:
    """The running local system, or `state.NoLocalSystem` with a sentence saying what to do."""
    current = state.read(state_path(state_file))
    age_s = (time.time_ns() - current.updated_at_ns) / 1e9
    if age_s > STALE_AFTER_S:
        raise state.NoLocalSystem(
            f"{state_path(state_file) or state.default_path()} was last written {age_s:.0f} s "
            f"ago: its owner (pid {current.owner_pid}) no longer keeps it up to date"
        )
    return current


def kafka_settings(
    bootstrap: str | None = None, state_file: str | None = None, *, identity: str
) -> KafkaSettings:
    """Kafka at `bootstrap`, or the local system's Kafka and topics when no bootstrap is given.

    On a secured broker each probe and action connects as `identity`, with the rights it needs
    (security.py): a local system names its credentials in its state file; on a cluster the
    credentials file named by `MEDPUBSUB_CREDENTIALS_FILE` serves (the harness writes one for a
    secured cluster run, `credentials.json` in its report directory). Without that file the
    client settings come from the MEDPUBSUB_KAFKA_* environment alone, one login for every
    probe, which the broker's ACLs may refuse.
    """
    if bootstrap:
        given = os.environ.get(CREDENTIALS_FILE_ENV)
        kafka = KafkaSettings(kafka_bootstrap=bootstrap)
        return Credentials.read(Path(given)).settings(kafka, identity) if given else kafka
    current = local_state(state_file)
    kafka = KafkaSettings(
        kafka_bootstrap=current.bootstrap,
        orders_topic=current.orders_topic,
        deliveries_topic=current.deliveries_topic,
        dlq_topic=current.dlq_topic,
    )
    if current.credentials_file is None:
        return kafka
    return Credentials.read(Path(current.credentials_file)).settings(kafka, identity)


def command_line(pid: int) -> list[str]:
    """The arguments `pid` was started with; empty when it is gone (or a zombie)."""
    return processes.command_line(pid)


def runs(pid: int, *markers: str) -> bool:
    """Whether `pid` is alive and `markers` are arguments of its command line, one after the
    other (`python -m medpubsub dispatcher` has "medpubsub", "dispatcher").

    Whole arguments, not parts of one: a checkout named medpubsub puts "medpubsub" in every path,
    and a report directory of the dispatcher design puts "dispatcher" there too, so Locust's
    command line (`--csv <checkout>/build/report/dispatcher/...`) held both, and a second
    kill_dispatcher killed Locust while the real dispatcher was restarting.
    """
    if not processes.is_alive(pid):
        return False
    arguments = command_line(pid)
    width = len(markers)
    return any(
        tuple(arguments[start : start + width]) == markers
        for start in range(len(arguments) - width + 1)
    )


# What the processes of the local system look like (see LocalPlatform and EmbeddedKafka).
MAKER_MARKERS = ("medpubsub", "medicine")
BROKER_MARKERS = ("kafka.Kafka",)
