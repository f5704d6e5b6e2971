"""The whole system on this machine: embedded Kafka, patient processes, KEDA-exact makers.

It reads the same manifests a cluster gets: the topics from `k8s/base/kafka-topics.yaml` (created
by the broker fixture) and the ScaledJob from `keda/medicine-scaledjob.yaml`, whose polling
interval, replica counts, strategy, trigger and maker environment drive `LocalScaledJob`. Like a
StatefulSet pod, a broker that dies (chaos) is started again on its data dir.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes, progress, project, state
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.kafka.security import Credentials, as_identity
from pytest_medpubsub.keda.scaledjob import ScaledJobSpec, load_scaled_job
from pytest_medpubsub.platforms.base import Platform, PlatformError
from pytest_medpubsub.platforms.local_scaledjob import LocalScaledJob
from pytest_medpubsub.waiting import wait_until

# Settings a process must not inherit from the user's shell: the manifest and the platform decide.
_OWNED_PREFIXES = ("MEDPUBSUB_", "MEDICINE_")
# Warm makers start as processes and join the group: seconds, unless the machine is very busy.
WARM_MAKERS_TIMEOUT_S = 60.0


class LocalPlatform(Platform):
    name = "local"

    def __init__(
        self,
        kafka: KafkaSettings,
        run_dir: Path,
        broker: EmbeddedKafka | None = None,
        state_file: Path | None = None,
        scaledjob_manifest: Path | None = None,
        *,
        credentials: Credentials | None = None,
    ):
        self._kafka = kafka
        # A secure broker: each process gets its own identity (the broker's, unless given).
        self._credentials = credentials or (broker.credentials if broker is not None else None)
        self.run_dir = run_dir
        self.broker = broker
        self.state_file = state_file
        self._manifest = scaledjob_manifest
        self._patients: list[tuple[str, subprocess.Popen[bytes], int]] = []
        self._patient_numbers = itertools.count(1)
        self._scaledjob: LocalScaledJob | None = None
        self._offsets: OffsetReader | None = None
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="local-supervisor")
        self.broker_restarts = 0

    # -- Platform ------------------------------------------------------------------------------

    @property
    def kafka(self) -> KafkaSettings:
        return self._kafka

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    def _as(self, identity: str) -> KafkaSettings:
        return as_identity(self.kafka, self._credentials, identity)

    @property
    def spec(self) -> ScaledJobSpec:
        return self._require_scaledjob().spec

    def start(self) -> None:
        manifest = self._manifest or project.project_dir() / project.SCALEDJOB_MANIFEST
        spec = load_scaled_job(manifest)
        group = spec.literal_env.get("MEDICINE_GROUP_ID", "medicine")
        if group != spec.trigger.consumer_group:
            raise PlatformError(
                f"{manifest}: the makers' MEDICINE_GROUP_ID ({group}) is not the trigger's "
                f"consumerGroup ({spec.trigger.consumer_group}); KEDA would watch the wrong group"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The scaler reads what KEDA's does, so it connects as KEDA would (security.py).
        self._offsets = OffsetReader(
            self._as("keda"), spec.trigger.consumer_group, spec.trigger.topic
        )
        self._scaledjob = LocalScaledJob(spec, self._offsets, self._start_maker)
        self._scaledjob.start()
        self._supervisor.start()
        self._wait_for_warm_makers(spec)
        progress.say(
            f"local platform up: Kafka {self.bootstrap_servers}, ScaledJob {spec.name} polling "
            f"every {spec.scaling.polling_interval} s (strategy "
            f"{spec.scaling.scaling_strategy.strategy}, max {spec.scaling.max_replica_count})"
        )

    def _wait_for_warm_makers(self, spec: ScaledJobSpec) -> None:
        """The ScaledJob's `minReplicaCount` makers in the group, owning every partition, so that
        the first order is served like the others (not by a maker still starting)."""
        warm = spec.scaling.min_rc
        if warm < 1:
            return
        trigger = spec.trigger
        with progress.step(
            f"waiting for {warm} warm maker(s) to own the partitions of {trigger.topic}"
        ):
            wait_until(
                lambda: group_assignment(self._as("keda"), trigger.consumer_group, trigger.topic),
                lambda seen: seen.fully_assigned and seen.members_with_partitions >= warm,
                WARM_MAKERS_TIMEOUT_S,
                f"{warm} warm maker(s) owning every partition of {trigger.topic}",
                interval_s=0.25,
            )

    def stop(self) -> None:
        """Patients first (no new orders), then makers, then the supervisor; the broker's owner
        stops the broker."""
        self.scale_patients(0)
        self._stopping.set()
        if self._scaledjob is not None:
            self._scaledjob.stop()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=10)
        if self._offsets is not None:
            self._offsets.close()
        if self.state_file is not None:
            state.remove(self.state_file)

    def scale_patients(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"patients cannot be negative: {count}")
        while len(self._patients) < count:
            number = next(self._patient_numbers)
            name = f"patient-{number}"
            process = processes.spawn(
                [sys.executable, "-m", "medpubsub", "patient"],
                env=self._environment(
                    {"ORBITAL_PATIENT_ID": name}, "patient", keep_prefix="ORBITAL_"
                ),
                log_path=self.run_dir / "logs" / "patients" / f"{name}.log",
            )
            self._patients.append((name, process, time.time_ns()))
        surplus = self._patients[count:]
        del self._patients[count:]
        processes.stop_all([process for _, process, _ in surplus])

    def patients(self) -> int:
        return sum(1 for _, process, _ in self._patients if process.poll() is None)

    def medicine_jobs(self) -> int:
        return len(self._require_scaledjob().running_jobs())

    def kill_medicine(self, count: int = 1) -> list[str]:
        return [job.name for job in self._require_scaledjob().kill(count)]

    def lag(self) -> int:
        if self._offsets is None:
            raise PlatformError("the local platform is not started")
        return self._offsets.total_lag()

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

    def dump_diagnostics(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        logs = self.run_dir / "logs"
        if logs.exists():
            shutil.copytree(logs, directory / "logs", dirs_exist_ok=True)
        if self.broker is not None and self.broker.log_file.exists():
            shutil.copy(self.broker.log_file, directory / "kafka-server.log")
        scaledjob = self._scaledjob
        if scaledjob is not None:
            lines = [
                f"jobs created: {scaledjob.jobs_created}",
                f"running: {[job.name for job in scaledjob.running_jobs()]}",
                f"finished: {scaledjob.finished_jobs()}",
                f"last poll: {scaledjob.last_poll}",
                f"last error: {scaledjob.last_error}",
                f"broker restarts: {self.broker_restarts}",
            ]
            (directory / "scaledjob-status.txt").write_text("\n".join(lines) + "\n")

    # -- processes -----------------------------------------------------------------------------

    def _start_maker(self, name: str) -> subprocess.Popen[bytes]:
        manifest_env = self._require_scaledjob().spec.literal_env
        return processes.spawn(
            [sys.executable, "-m", "medpubsub", "medicine"],
            env=self._environment(manifest_env, "medicine"),
            log_path=self.run_dir / "logs" / "makers" / f"{name}.log",
        )

    def _environment(
        self, extra: dict[str, str], identity: str, keep_prefix: str | None = None
    ) -> dict[str, str]:
        """The user's environment without our settings, then the given ones, then where Kafka is
        (and, on a secure broker, `identity`'s credentials)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_OWNED_PREFIXES)
            or (keep_prefix is not None and key.startswith(keep_prefix))
        }
        env.update(extra)
        env.update(
            {
                "MEDPUBSUB_KAFKA_BOOTSTRAP": self.kafka.kafka_bootstrap,
                "MEDPUBSUB_ORDERS_TOPIC": self.kafka.orders_topic,
                "MEDPUBSUB_DELIVERIES_TOPIC": self.kafka.deliveries_topic,
                "MEDPUBSUB_DLQ_TOPIC": self.kafka.dlq_topic,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self._credentials is not None:
            env.update(self._credentials.environment(identity))
        return env

    def _supervise(self) -> None:
        """Restart a broker that died (as Kubernetes restarts a pod); keep the state file fresh."""
        while not self._stopping.wait(0.5):
            if self.broker is not None and self.broker.pid is None:
                try:
                    progress.say("the broker is down; starting it again on its data dir")
                    self.broker.start()
                    self.broker_restarts += 1
                except Exception as error:
                    progress.say(f"restarting the broker failed: {error}")
            if self.state_file is not None:
                state.write(self.snapshot(), self.state_file)

    def snapshot(self) -> state.LocalState:
        spec = self._require_scaledjob().spec
        broker = self.broker
        broker_pid = broker.pid if broker is not None else None
        return state.LocalState(
            owner_pid=os.getpid(),
            bootstrap=self.kafka.kafka_bootstrap,
            group_id=spec.trigger.consumer_group,
            orders_topic=self.kafka.orders_topic,
            deliveries_topic=self.kafka.deliveries_topic,
            dlq_topic=self.kafka.dlq_topic,
            broker=state.ProcessInfo(name="kafka", pid=broker_pid, started_at_ns=0)
            if broker_pid is not None
            else None,
            kafka_data_dir=str(broker.data_dir) if broker is not None else None,
            credentials_file=str(broker.credentials_file)
            if broker is not None and broker.credentials_file is not None
            else None,
            patients=[
                state.ProcessInfo(name=name, pid=process.pid, started_at_ns=started)
                for name, process, started in self._patients
                if process.poll() is None
            ],
            makers=[
                state.ProcessInfo(
                    name=job.name, pid=job.process.pid, started_at_ns=job.started_at_ns
                )
                for job in self._require_scaledjob().running_jobs()
            ],
            warm_makers=spec.scaling.min_rc,
            updated_at_ns=time.time_ns(),
        )

    def _require_scaledjob(self) -> LocalScaledJob:
        if self._scaledjob is None:
            raise PlatformError("the local platform is not started")
        return self._scaledjob
