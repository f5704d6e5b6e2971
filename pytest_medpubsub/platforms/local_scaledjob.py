"""KEDA's ScaledJob controller, on this machine: one `medpubsub medicine` process per Job.

Every `pollingInterval` it reads the group's offsets, asks the KEDA arithmetic
(`pytest_medpubsub.keda.scaler.poll`) how many Jobs to create, starts that many makers, and
forgets finished Jobs beyond the history limits, as KEDA's executor does. A local Job is "pending"
for no time at all: a process runs as soon as it is started, like a pod whose image is present.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pytest_medpubsub import processes, progress
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.keda.scaledjob import ScaledJobSpec
from pytest_medpubsub.keda.scaler import FinishedJob, PollResult, ScalerState, poll

StartJob = Callable[[str], subprocess.Popen[bytes]]
# A maker asked to stop settles what it has in flight and leaves the group: seconds at most (a
# Job's terminationGracePeriodSeconds on a cluster is 5 s).
STOP_GRACE_S = 10.0


@dataclass
class LocalJob:
    name: str
    process: subprocess.Popen[bytes]
    started_at: float  # monotonic
    started_at_ns: int  # wall clock, for reports and the state file


class LocalScaledJob:
    """Creates and reaps maker processes exactly as KEDA would create and clean up Jobs."""

    def __init__(self, spec: ScaledJobSpec, offsets: OffsetReader, start_job: StartJob):
        self.spec = spec
        self._offsets = offsets
        self._start_job = start_job
        self._lock = threading.Lock()
        self._running: list[LocalJob] = []
        self._finished: list[FinishedJob] = []
        self._state = ScalerState()
        self._sequence = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scaledjob", daemon=True)
        self.paused = threading.Event()
        self.jobs_created = 0
        self.last_poll: PollResult | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop polling, then stop every running maker (SIGTERM, then SIGKILL)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        with self._lock:
            running = [job.process for job in self._running]
        processes.stop_all(running, grace_s)
        self._reap()

    def running_jobs(self) -> list[LocalJob]:
        """Unfinished Jobs now (a maker that exited is reaped first)."""
        self._reap()
        with self._lock:
            return list(self._running)

    def finished_jobs(self) -> list[FinishedJob]:
        with self._lock:
            return list(self._finished)

    def stop_all(self) -> list[LocalJob]:
        """SIGTERM every running maker and wait for it to leave: a stop, which ends its Job."""
        stopped = self.running_jobs()
        for job in stopped:
            processes.stop(job.process, grace_s=STOP_GRACE_S)
        self._reap()
        return stopped

    def kill(self, count: int) -> list[LocalJob]:
        """SIGKILL the `count` oldest running makers: a crash, which fails their Jobs."""
        victims = self.running_jobs()[:count]
        for job in victims:
            processes.kill(job.process)
        self._reap()
        return victims

    def _loop(self) -> None:
        interval = self.spec.scaling.polling_interval
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if not self.paused.is_set():
                    self.poll_once()
                self.last_error = None
            except Exception as error:
                detail = f"{type(error).__name__}: {error}"
                if detail != self.last_error:
                    progress.say(f"scaledjob/{self.spec.name}: poll failed: {detail}")
                self.last_error = detail
            self._stop.wait(max(0.0, interval - (time.monotonic() - began)))

    def poll_once(self) -> PollResult:
        """One KEDA polling cycle; returns what was decided."""
        self._reap()
        self._enforce_deadline()
        partitions = self._offsets.partitions()
        with self._lock:
            result = poll(
                partitions,
                self.spec.trigger,
                self.spec.scaling,
                running=len(self._running),
                pending=0,
                state=self._state,
                finished=self._finished,
            )
            self._state = result.state
            doomed = set(result.jobs_to_delete)
            self._finished = [job for job in self._finished if job.name not in doomed]
        for _ in range(result.jobs_to_create):
            self._create_job()
        self.last_poll = result
        return result

    def _create_job(self) -> None:
        name = f"{self.spec.name}-{next(self._sequence):05d}"
        process = self._start_job(name)
        with self._lock:
            self._running.append(LocalJob(name, process, time.monotonic(), time.time_ns()))
            self.jobs_created += 1

    def _reap(self) -> None:
        with self._lock:
            still_running = []
            for job in self._running:
                code = job.process.poll()
                if code is None:
                    still_running.append(job)
                else:
                    self._finished.append(FinishedJob(job.name, code == 0, time.monotonic()))
            self._running = still_running

    def _enforce_deadline(self) -> None:
        """`activeDeadlineSeconds`: Kubernetes kills a Job's pod that runs longer."""
        deadline = self.spec.active_deadline_seconds
        if deadline is None:
            return
        now = time.monotonic()
        for job in self.running_jobs():
            if now - job.started_at > deadline:
                progress.say(f"job {job.name} exceeded activeDeadlineSeconds={deadline}; killing")
                processes.kill(job.process)
