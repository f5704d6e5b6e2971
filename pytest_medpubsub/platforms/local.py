"""The ScaledJob design on this machine: embedded Kafka, patient processes, KEDA-exact makers.

It reads the same manifests a cluster gets: the topics from `k8s/base/kafka-topics.yaml` (created
by the broker fixture) and the ScaledJob from `keda/medicine-scaledjob.yaml`, whose polling
interval, replica counts, strategy, trigger and maker environment drive `LocalScaledJob`. Like a
StatefulSet pod, a broker that dies (chaos) is started again on its data dir (`local_system.py`,
which the dispatcher design shares).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medpubsub.medicine.readiness import read_ready_partitions
from pytest_medpubsub import processes, progress, project, state
from pytest_medpubsub.designs import scaledjob as this_design
from pytest_medpubsub.kafka.group import GroupAssignment, group_assignment
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.keda.scaledjob import ScaledJobSpec, load_scaled_job
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.local_scaledjob import LocalScaledJob
from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem
from pytest_medpubsub.waiting import wait_until

# Warm makers start as processes, join the group and register a producer per partition:
# seconds, unless the machine is very busy.
WARM_MAKERS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WarmMakers:
    """What the wait for warm makers sees: the group, and the partitions ready makers list."""

    assignment: GroupAssignment
    ready_partitions: int

    def serving(self, warm: int) -> bool:
        """`warm` makers own every partition, and each one can commit there at once."""
        assignment = self.assignment
        return (
            assignment.fully_assigned
            and assignment.members_with_partitions >= warm
            and self.ready_partitions >= assignment.partitions
        )

    def __str__(self) -> str:
        return f"{self.assignment}, {self.ready_partitions} of them registered"


class LocalPlatform(LocalSystem):
    """The local platform of the ScaledJob design (module docstring)."""

    design = this_design.NAME

    def __init__(self, run: LocalRun, scaledjob_manifest: Path | None = None) -> None:
        super().__init__(run)
        self._manifest = scaledjob_manifest
        self._scaledjob: LocalScaledJob | None = None

    @property
    def spec(self) -> ScaledJobSpec:
        return self._require_scaledjob().spec

    def medicine_jobs(self) -> int:
        return len(self._require_scaledjob().running_jobs())

    def kill_medicine(self, count: int = 1) -> list[str]:
        return [job.name for job in self._require_scaledjob().kill(count)]

    def stop_makers(self) -> list[str]:
        return [job.name for job in self._require_scaledjob().stop_all()]

    def warm_makers(self) -> int:
        return self.spec.scaling.min_rc

    @property
    def jobs_created(self) -> int:
        """Makers started so far (every Job KEDA would have created)."""
        return self._require_scaledjob().jobs_created

    def pause_scaling(self, paused: bool) -> None:
        scaledjob = self._require_scaledjob()
        if paused:
            scaledjob.paused.set()
        else:
            scaledjob.paused.clear()

    # -- the design's hooks --------------------------------------------------------------------

    @property
    def _manifest_path(self) -> Path:
        return self._manifest or project.project_dir() / project.SCALEDJOB_MANIFEST

    def _start_makers(self) -> None:
        manifest = self._manifest_path
        spec = load_scaled_job(manifest)
        group = spec.literal_env.get("MEDICINE_GROUP_ID", "medicine")
        if group != spec.trigger.consumer_group:
            raise PlatformError(
                f"{manifest}: the makers' MEDICINE_GROUP_ID ({group}) is not the trigger's "
                f"consumerGroup ({spec.trigger.consumer_group}); KEDA would watch the wrong group"
            )
        # The scaler reads what KEDA's does, so it connects as KEDA would (security.py).
        self._offsets = OffsetReader(
            self._as("keda"), spec.trigger.consumer_group, spec.trigger.topic
        )
        self._scaledjob = LocalScaledJob(spec, self._offsets, self._start_maker)
        self._scaledjob.start()

    def _wait_until_serving(self) -> None:
        """The ScaledJob's `minReplicaCount` makers in the group, owning every partition and
        registered on each, so that the first order is served like the others (not by a maker
        still starting, nor one still registering its partitions' producers)."""
        spec = self.spec
        warm = spec.scaling.min_rc
        if warm < 1:
            return
        trigger = spec.trigger
        with progress.step(
            f"waiting for {warm} warm maker(s) to own the partitions of {trigger.topic}"
        ):
            wait_until(
                lambda: WarmMakers(
                    group_assignment(self._as("keda"), trigger.consumer_group, trigger.topic),
                    len(self._ready_partitions(trigger.topic)),
                ),
                lambda seen: seen.serving(warm),
                WARM_MAKERS_TIMEOUT_S,
                f"{warm} warm maker(s) owning and registered on every partition of {trigger.topic}",
                interval_s=0.25,
            )

    def _ready_partitions(self, topic: str) -> set[int]:
        """The partitions of `topic` that running makers' readiness files list."""
        found: set[int] = set()
        for job in self._require_scaledjob().running_jobs():
            found |= {
                partition
                for listed, partition in read_ready_partitions(self._ready_file(job.name))
                if listed == topic
            }
        return found

    def _ready_file(self, maker: str) -> Path:
        return self.run_dir / "ready" / maker

    def _describe(self) -> str:
        spec = self.spec
        return (
            f"ScaledJob {spec.name} polling every {spec.scaling.polling_interval} s (strategy "
            f"{spec.scaling.scaling_strategy.strategy}, max {spec.scaling.max_replica_count})"
        )

    def _stop_makers(self) -> None:
        if self._scaledjob is not None:
            self._scaledjob.stop()

    def _group_id(self) -> str:
        # Before the start too (the bench moves the group before the makers join it).
        spec = self._scaledjob.spec if self._scaledjob else load_scaled_job(self._manifest_path)
        return spec.trigger.consumer_group

    def _running_makers(self) -> list[state.ProcessInfo]:
        return [
            state.ProcessInfo(name=job.name, pid=job.process.pid, started_at_ns=job.started_at_ns)
            for job in self._require_scaledjob().running_jobs()
        ]

    def _status_lines(self) -> list[str]:
        scaledjob = self._scaledjob
        if scaledjob is None:
            return []
        return [
            f"jobs created: {scaledjob.jobs_created}",
            f"running: {[job.name for job in scaledjob.running_jobs()]}",
            f"finished: {scaledjob.finished_jobs()}",
            f"last poll: {scaledjob.last_poll}",
            f"last error: {scaledjob.last_error}",
        ]

    def _start_maker(self, name: str) -> subprocess.Popen[bytes]:
        manifest_env = self._require_scaledjob().spec.literal_env
        ready_file = self._ready_file(name)
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        return processes.spawn(
            [sys.executable, "-m", "medpubsub", "medicine"],
            env=self._environment(
                {**manifest_env, "MEDICINE_READY_FILE": str(ready_file)}, "medicine"
            ),
            log_path=self.run_dir / "logs" / "makers" / f"{name}.log",
        )

    def _require_scaledjob(self) -> LocalScaledJob:
        if self._scaledjob is None:
            raise PlatformError("the local platform is not started")
        return self._scaledjob
