"""How a run ends, the same way for a test (the plugin), `medpubsub demo` and the bench.

The load stops; the makers drain every order placed since the run's mark; when the SLOs ask for
it, the makers scale in to the warm floor; the final figures are evaluated against the SLOs and
the report is written (with the dead letters read back when there are any). One function, so
that a report means the same whichever command wrote it, and a change to how a run ends (a new
step, a new report key) is made once.

What the callers do around it stays theirs: the plugin fails the test and dumps diagnostics, the
demo prints its outcome, the bench turns the summary into a table row.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.security import as_identity
from pytest_medpubsub.observer import Mark, Summary
from pytest_medpubsub.platforms.base import Platform
from pytest_medpubsub.report import write_report
from pytest_medpubsub.reports.dead_letters import DEAD_LETTERS_KEY, read_dead_letters
from pytest_medpubsub.slo import SloResult, SloSpec, evaluate
from pytest_medpubsub.waiting import WaitTimeout, wait_until


class Watching(Protocol):
    """What ending a run reads of the observer."""

    def wait_drained(self, timeout_s: float, since: Mark | None = None) -> Summary: ...

    def summary(self, since: Mark | None = None, final: bool = False) -> Summary: ...


@dataclass(frozen=True)
class EndedRun:
    """What `end_run` measured and wrote: the final summary, the SLO verdict (None when the run
    was given no SLOs), where report.json is, and how long the drain took."""

    summary: Summary
    result: SloResult | None
    report: Path
    drain_s: float

    @property
    def slo(self) -> SloResult:
        """The verdict of a run that was given SLOs (the plugin's and the demo's are)."""
        if self.result is None:
            raise ValueError("this run was ended without SLOs")
        return self.result


def end_run(
    platform: Platform,
    observer: Watching,
    since: Mark,
    report_dir: Path,
    *,
    drain_timeout_s: float,
    spec: SloSpec | None,
    design: str,
    settings: Mapping[str, object],
    facts: Callable[[], Mapping[str, Any]] | None = None,
    drained: Callable[[], None] | None = None,
) -> EndedRun:
    """End the run that began at `since` and write its report into `report_dir`.

    `design` and `settings` go into every report under those keys; `facts()` gives the caller's
    own sections, asked for once the run is over (so that counts such as the makers started
    include those of the drain). `drained` is called once every order is made, before the
    scale-in wait (the bench stops sampling the makers' CPU there). A drain that times out does
    not raise: its orders count as lost, and the SLO check, not this function, gives the verdict.
    """
    if platform.patients():
        progress.say("patients -> 0")
        platform.scale_patients(0)
    drain_started = time.monotonic()
    with progress.step("Waiting for the makers to drain the orders"):
        observer.wait_drained(drain_timeout_s, since=since)
    drain_s = time.monotonic() - drain_started
    if drained is not None:
        drained()
    warm = platform.warm_makers()
    if spec is not None and spec.scale_in_within_s is not None:
        with progress.step(f"Waiting for the makers to scale in to {warm} (the warm floor)"):
            wait_scaled_in(observer, since, spec.scale_in_within_s, warm)
    summary = observer.summary(since=since, final=True)
    result = evaluate(summary, spec, warm) if spec is not None else None
    own = facts() if facts is not None else {}
    sections: dict[str, Any] = {**own, "design": design, "settings": dict(settings)}
    if summary.dead_letters:  # their reasons and records, read back for the report
        kafka = as_identity(platform.kafka, platform.credentials, "observer")
        sections[DEAD_LETTERS_KEY] = read_dead_letters(kafka, since.ns).to_dict()
    path = write_report(report_dir, summary, result, extra=sections)
    return EndedRun(summary=summary, result=result, report=path, drain_s=drain_s)


def wait_scaled_in(observer: Watching, since: Mark, timeout_s: float, warm_makers: int = 0) -> None:
    """Wait until the observer's latest sample shows no more than the warm makers; the scale-in
    SLO reads samples.

    Does not raise: a system that does not scale in fails the scale-in check with the figures.
    """

    def latest_jobs() -> int | None:
        timeline = observer.summary(since=since).timeline
        return timeline[-1].jobs if timeline else None

    with contextlib.suppress(WaitTimeout):
        wait_until(
            latest_jobs,
            lambda jobs: jobs is not None and jobs <= warm_makers,
            timeout_s,
            f"at most {warm_makers} makers in the timeline",
            0.5,
        )
