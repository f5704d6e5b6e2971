"""The patient ramp (`MEDPUBSUB_RAMP`, e.g. `1x10,5x20,0x5`) and the rest of the environment
contract between the harness and the locustfile (load/patients.py).

Both sides import this module: the locustfile parses the ramp with `parse_ramp`, the harness
writes it with `format_ramp`, so the two never disagree on the format. It is pure and imports
neither Locust nor Kafka, so the locustfile loads it cheaply and its rules are tested as tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The environment contract between the harness and load/patients.py (besides docs/design.md §2.2).
RAMP_ENV = "MEDPUBSUB_RAMP"
ACKS_FILE_ENV = "MEDPUBSUB_LOAD_ACKS_FILE"
STOP_FILE_ENV = "MEDPUBSUB_LOAD_STOP_FILE"
ACK_TIMEOUT_ENV = "MEDPUBSUB_LOAD_ACK_TIMEOUT_SECONDS"
SUMMARY_FILE_ENV = "MEDPUBSUB_LOAD_SUMMARY_FILE"


class RampError(ValueError):
    """A ramp specification that cannot be used; the message is one sentence."""


@dataclass(frozen=True)
class RampStep:
    """Run `patients` patients for `seconds` seconds."""

    patients: int
    seconds: float


def parse_ramp(spec: str) -> tuple[RampStep, ...]:
    """Steps from `"1x10,5x20,0x5"`: patients × seconds per step, comma-separated.

    A trailing `0xS` step stops every patient and leaves S seconds for their last orders to be
    acknowledged before Locust quits. Raises `RampError` with one sentence naming the bad step.
    """
    text = spec.strip()
    if not text:
        raise RampError(f"{RAMP_ENV} is empty; give steps like 1x10,5x20,0x5 (patients x seconds)")
    steps = []
    for number, part in enumerate(text.split(","), start=1):
        steps.append(_parse_step(part.strip(), number, spec))
    return tuple(steps)


def _parse_step(part: str, number: int, spec: str) -> RampStep:
    patients_text, separator, seconds_text = part.lower().partition("x")
    where = f"{RAMP_ENV}={spec!r}: step {number} ({part!r})"
    if not separator:
        raise RampError(f"{where} is not PATIENTSxSECONDS, e.g. 5x20")
    try:
        patients = int(patients_text)
        seconds = float(seconds_text)
    except ValueError:
        raise RampError(f"{where} is not PATIENTSxSECONDS, e.g. 5x20") from None
    if patients < 0:
        raise RampError(f"{where} has a negative number of patients")
    if not math.isfinite(seconds) or seconds <= 0:
        raise RampError(f"{where} must last a positive number of seconds")
    return RampStep(patients, seconds)


def format_ramp(steps: Sequence[RampStep]) -> str:
    """The `MEDPUBSUB_RAMP` text of `steps` (the inverse of `parse_ramp`)."""
    return ",".join(f"{step.patients}x{step.seconds:g}" for step in steps)


def ramp_duration_s(steps: Sequence[RampStep]) -> float:
    return sum(step.seconds for step in steps)


def step_at(steps: Sequence[RampStep], elapsed_s: float) -> RampStep | None:
    """The step running `elapsed_s` seconds into the ramp; None once the ramp is over."""
    end = 0.0
    for step in steps:
        end += step.seconds
        if elapsed_s < end:
            return step
    return None
