"""A row of the benchmark's table: a design, or a variant of one, run on this machine.

The rows are the designs' own (`pytest_medpubsub.designs`, `bench_rows`); a row of the ScaledJob
design may change its manifest (`adapt`), derived from the project's so that nothing else
differs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.bench.capacity import RowCapacity, scaledjob_capacity
from pytest_medpubsub.keda.scaledjob import ScaledJobSpec

Manifest = dict[str, Any]


def as_is(document: Manifest) -> Manifest:
    return document


@dataclass(frozen=True)
class BenchRow:
    name: str
    summary: str
    # Which design's local platform runs it (a name of `pytest_medpubsub.designs`).
    platform: str
    adapt: Callable[[Manifest], Manifest] = as_is
    # What its makers hold, from the row's ScaledJob (a design without one ignores it).
    capacity: Callable[[ScaledJobSpec], RowCapacity] = scaledjob_capacity
    # The most patients worth a run: past its knee a row's backlog outlasts the drain's bound,
    # and the run measures the bound, not the design. None: every load.
    max_patients: int | None = None

    def manifest(self, source: Path, directory: Path) -> Path:
        """Write this row's ScaledJob (derived from `source`) into `directory`."""
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        target = directory / f"scaledjob-{self.name}.yaml"
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.adapt(copy.deepcopy(document))), encoding="utf-8")
        return target

    def runs_at(self, patients: int) -> bool:
        return self.max_patients is None or patients <= self.max_patients
