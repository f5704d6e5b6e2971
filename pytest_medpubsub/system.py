"""The running system as a test sees it: the platform, the observer, and the run's bookkeeping.

`medpubsub_system` hands this to a test. Scenarios drive it (`scale_patients`, `kill_medicine`),
wait on it (`wait_for_jobs`, `observer.wait_drained`) and read figures from it; the plugin then
ends the run (`run_end.end_run`: drain, scale-in, SLOs, report).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_medpubsub import progress
from pytest_medpubsub.host_cpu import CpuShare, CpuWindow
from pytest_medpubsub.observer import Mark, Observer, Summary
from pytest_medpubsub.platforms.base import Platform
from pytest_medpubsub.reports.faults import MAKER_KILL, fault_record
from pytest_medpubsub.waiting import stays, wait_until


class MedpubsubSystem:
    """The system under test on one platform, with an observer watching every order and tab."""

    def __init__(self, platform: Platform, observer: Observer, report_dir: Path):
        self.platform = platform
        self.observer = observer
        self.report_dir = report_dir
        self.started: Mark = observer.mark()
        self.cpu = CpuWindow()  # how busy the machine is from here to the report
        self.host_cpu: CpuShare | None = None
        self.attachments: dict[str, Any] = {}
        # Faults this test injected through the harness, for the report's timeline.
        self.faults: list[dict[str, Any]] = []

    # -- what the platform offers ---------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return self.platform.bootstrap_servers

    def scale_patients(self, count: int) -> None:
        """Run exactly `count` patients from now on."""
        progress.say(f"patients -> {count}")
        self.platform.scale_patients(count)

    def patients(self) -> int:
        return self.platform.patients()

    def medicine_jobs(self) -> int:
        """Unfinished medicine makers now, as KEDA counts Jobs."""
        return self.platform.medicine_jobs()

    def kill_medicine(self, n: int = 1) -> list[str]:
        """Kill `n` running makers abruptly; returns their names."""
        killed = self.platform.kill_medicine(n)
        if killed:
            self.faults.append(fault_record(MAKER_KILL, ", ".join(killed)))
        progress.say(f"killed makers: {', '.join(killed) or 'none was running'}")
        return killed

    def lag(self) -> int:
        return self.platform.lag()

    @property
    def warm_makers(self) -> int:
        """The makers kept running at rest (the ScaledJob's minReplicaCount): scale-in ends
        there."""
        return self.platform.warm_makers()

    # -- waits ----------------------------------------------------------------------------------

    def wait_for_jobs(self, accept: Callable[[int], bool], timeout_s: float, describe: str) -> int:
        """Wait until the maker count satisfies `accept` (e.g. `lambda n: n >= 3`)."""
        return wait_until(self.medicine_jobs, accept, timeout_s, describe, interval_s=0.5)

    def jobs_stay(self, accept: Callable[[int], bool], duration_s: float, describe: str) -> None:
        """Check that the maker count satisfies `accept` for the whole of `duration_s`."""
        stays(self.medicine_jobs, accept, duration_s, describe)

    def run_for(self, seconds: float) -> None:
        """Let the load run; the observer keeps sampling meanwhile."""
        time.sleep(seconds)

    # -- results --------------------------------------------------------------------------------

    def summary(self, final: bool = False) -> Summary:
        """The figures of every order placed since this test started."""
        return self.observer.summary(since=self.started, final=final)

    def report_facts(self) -> dict[str, Any]:
        """This test's own report sections, read once the run is over: the attachments, the
        faults it injected, and how busy the machine was meanwhile (kept for the failure message).
        """
        self.host_cpu = self.cpu.share()
        return self.attachments | {"faults": self.faults, "host_cpu": self.host_cpu.to_dict()}

    def attach(self, name: str, data: Any) -> None:
        """Add `data` (JSON-able) to this test's report under `name` (locust, chaos, ...)."""
        self.attachments[name] = data
