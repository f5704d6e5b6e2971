"""The faults a run injected, on one clock: maker kills, broker kills and other chaos actions.

Two sources feed them. The harness records its own kills (`MedpubsubSystem.kill_medicine`) as
`fault_record` entries under the report's `faults` key; Chaos Toolkit experiments keep a journal
(attached as `chaos` or `chaos_journal`) whose method and rollback actions carry their start
time. `faults_of` reads both from a `report.json` document, so a page drawn again from an old
file marks the same moments as the plots of the run did.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

MAKER_KILL = "maker_kill"
BROKER_KILL = "broker_kill"
DISPATCHER_KILL = "dispatcher_kill"
CHAOS_ACTION = "chaos_action"
KILLS = frozenset({MAKER_KILL, BROKER_KILL, DISPATCHER_KILL})

# Chaos Toolkit actions of this project's extension that are faults, by provider function.
_CHAOS_KILLS = {
    "kill_makers": MAKER_KILL,
    "kill_broker": BROKER_KILL,
    "kill_dispatcher": DISPATCHER_KILL,
}
_JOURNAL_KEYS = ("chaos", "chaos_journal")


class Fault(BaseModel):
    """One injected fault or chaos action: when (wall clock, ns), what kind, what exactly."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    at_ns: int
    kind: str
    what: str
    source: str = "harness"

    @property
    def is_kill(self) -> bool:
        return self.kind in KILLS


def fault_record(kind: str, what: str, at_ns: int | None = None) -> dict[str, Any]:
    """A harness fault as it is kept in `report.json` (`faults`: a list of these)."""
    return Fault(
        at_ns=time.time_ns() if at_ns is None else at_ns, kind=kind, what=what
    ).model_dump()


def faults_of(document: Mapping[str, Any]) -> list[Fault]:
    """Every fault of a report document, in time order; malformed entries are left out (a page
    about a broken run must still render)."""
    found: list[Fault] = []
    for entry in document.get("faults") or []:
        try:
            found.append(Fault.model_validate(entry))
        except ValidationError:
            continue
    for key in _JOURNAL_KEYS:
        journal = document.get(key)
        if isinstance(journal, Mapping):
            found.extend(journal_faults(journal))
    return sorted(found, key=lambda fault: fault.at_ns)


def journal_faults(journal: Mapping[str, Any]) -> list[Fault]:
    """The actions of a Chaos Toolkit journal (method and rollbacks), probes left out."""
    faults = []
    for section in ("run", "rollbacks"):
        for run in journal.get(section) or []:
            fault = _journal_fault(run, section)
            if fault is not None:
                faults.append(fault)
    return faults


def _journal_fault(run: Any, section: str) -> Fault | None:
    if not isinstance(run, Mapping):
        return None
    activity = run.get("activity") or {}
    provider = activity.get("provider") or {}
    func = str(provider.get("func") or activity.get("name") or "?")
    kind = _CHAOS_KILLS.get(func)
    if kind is None and activity.get("type") != "action":
        return None  # a probe: it looks, it injects nothing
    try:
        at_ns = int(datetime.fromisoformat(str(run["start"])).timestamp() * 1_000_000_000)
    except (KeyError, ValueError):
        return None
    status = run.get("status", "?")
    output = run.get("output")
    detail = f"{func} ({status})"
    if kind is not None and output not in (None, "", [], {}):
        detail += f": {_short(output)}"
    where = "chaos rollback" if section == "rollbacks" else "chaos"
    return Fault(at_ns=at_ns, kind=kind or CHAOS_ACTION, what=detail, source=where)


def _short(value: Any, limit: int = 120) -> str:
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{key}={item}" for key, item in value.items())
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
