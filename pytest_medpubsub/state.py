"""`.medpubsub/local.json`: how other tools find a running local system.

`medpubsub up` (and the pytest plugin's local platform) rewrite this file about once a second, by
atomic rename, so `locust -f load/patients.py`, `chaos run chaos/*-local.json` and `medpubsub
status` / `down` can find the broker and the processes without talking to the harness.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pytest_medpubsub import project
from pytest_medpubsub.processes import is_alive


class ProcessInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    started_at_ns: int


class LocalState(BaseModel):
    """What is running now; written by the process that owns it all (`owner_pid`)."""

    model_config = ConfigDict(frozen=True)

    owner_pid: int
    bootstrap: str
    group_id: str
    orders_topic: str
    deliveries_topic: str
    dlq_topic: str
    broker: ProcessInfo | None  # None when an external broker is used
    kafka_data_dir: str | None
    # A secure broker's credentials file (security.Credentials): how tools get their identity.
    credentials_file: str | None = None
    # The ScaledJob's minReplicaCount: the makers kept running at rest (scale-in ends there).
    warm_makers: int = 0
    patients: list[ProcessInfo]
    makers: list[ProcessInfo]
    updated_at_ns: int


class NoLocalSystem(Exception):
    """No state file, or its owner is gone: nothing local is running."""


def default_path() -> Path:
    return Path(os.environ.get("MEDPUBSUB_STATE_FILE") or project.state_dir() / "local.json")


def write(state: LocalState, path: Path | None = None) -> None:
    target = path or default_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".local-", suffix=".json")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(state.model_dump_json(indent=2))
    Path(temporary).replace(target)


def read(path: Path | None = None) -> LocalState:
    """The current state, or `NoLocalSystem` with a sentence that says to run `medpubsub up`."""
    source = path or default_path()
    try:
        state = LocalState.model_validate_json(source.read_text())
    except FileNotFoundError:
        raise NoLocalSystem(
            f"no local medpubsub is running ({source} is missing); start one with `medpubsub up`"
        ) from None
    if not is_alive(state.owner_pid):
        raise NoLocalSystem(
            f"the medpubsub that wrote {source} (pid {state.owner_pid}) is gone; start one with "
            "`medpubsub up`"
        )
    return state


def remove(path: Path | None = None) -> None:
    (path or default_path()).unlink(missing_ok=True)
