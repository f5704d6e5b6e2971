"""Locust's figures of a run: its CSV files read back, and the result the harness reports.

Pure parsing and models (no Locust, no process), so that what a run's files mean is tested on
files written by hand.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class LocustStats(BaseModel):
    """One row of Locust's `*_stats.csv`: produce acknowledgements, latencies in ms.

    Percentiles are Locust's (it rounds response times above 100 ms to two significant digits);
    None when there was no request.
    """

    model_config = ConfigDict(frozen=True)

    requests: int
    failures: int
    median_ms: float | None
    average_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    requests_per_s: float | None


class LoadSummary(BaseModel):
    """What load/patients.py writes when Locust quits (MEDPUBSUB_LOAD_SUMMARY_FILE)."""

    stats: LocustStats
    errors: list[str]


class LocustResult(BaseModel):
    """A finished Locust run: how it ended, its figures and where its files are."""

    model_config = ConfigDict(frozen=True)

    ramp: str
    exit_code: int | None
    stopped_early: bool
    timed_out: bool
    duration_s: float
    stats: LocustStats
    errors: list[str]
    acknowledged_orders: int
    out_dir: str

    @property
    def passed(self) -> bool:
        """Locust exited 0 and reported no failed delivery."""
        return self.exit_code == 0 and self.stats.failures == 0 and not self.timed_out

    def describe(self) -> str:
        stats = self.stats
        return (
            f"Locust ({self.ramp}): exit {self.exit_code}, {stats.requests} orders produced, "
            f"{stats.failures} failed, ack p95 {stats.p95_ms} ms, p99 {stats.p99_ms} ms"
            + (f"; errors: {'; '.join(self.errors)}" if self.errors else "")
            + (f" (see {self.out_dir})" if not self.passed else "")
        )

    def to_report(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_stats_csv(path: Path) -> LocustStats:
    """The `Aggregated` row of a Locust `*_stats.csv` (all zeros when the file has none)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next((row for row in rows if row.get("Name") == "Aggregated"), None)
    if row is None:
        return LocustStats(
            requests=0, failures=0, median_ms=None, average_ms=None,
            p95_ms=None, p99_ms=None, max_ms=None, requests_per_s=None,
        )  # fmt: skip
    requests = int(row["Request Count"])
    return LocustStats(
        requests=requests,
        failures=int(row["Failure Count"]),
        median_ms=_number(row.get("Median Response Time"), requests),
        average_ms=_number(row.get("Average Response Time"), requests),
        p95_ms=_number(row.get("95%"), requests),
        p99_ms=_number(row.get("99%"), requests),
        max_ms=_number(row.get("Max Response Time"), requests),
        requests_per_s=_number(row.get("Requests/s"), requests),
    )


def parse_failures_csv(path: Path) -> list[str]:
    """`<occurrences> x <error>` for each distinct failure in a Locust `*_failures.csv`."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [f"{row['Occurrences']} x {row['Error']}" for row in csv.DictReader(handle)]


def _number(text: str | None, requests: int) -> float | None:
    if requests == 0 or text is None or text.strip() in ("", "N/A"):
        return None
    return float(text)
