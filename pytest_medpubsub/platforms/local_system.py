"""What the local platforms of both designs share: the embedded broker kept running, the patient
processes, the environment each process gets, the state file and the diagnostics.

A design says who starts the makers (`local.py`: the KEDA-exact ScaledJob; `local_dispatcher.py`:
the dispatcher) through the hooks at the end of `LocalSystem`.
"""

from __future__ import annotations

import abc
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes, progress, state
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.kafka.security import Credentials, as_identity
from pytest_medpubsub.platforms.base import Platform, PlatformError
from pytest_medpubsub.waiting import WaitTimeout

# Settings a process must not inherit from the user's shell: the manifests and the platform decide.
_OWNED_PREFIXES = ("MEDPUBSUB_", "MEDICINE_", "DISPATCHER_")


@dataclass(frozen=True)
class LocalRun:
    """Where a local platform runs: the broker (kept running by its owner, restarted here when it
    dies), the platform's own directory, and the state file `chaos run` finds it by."""

    kafka: KafkaSettings
    run_dir: Path
    broker: EmbeddedKafka | None = None
    state_file: Path | None = None


class LocalSystem(Platform):
    """The system on this machine; `start()` runs the design's makers, `stop()` stops it all but
    the broker (its owner stops it)."""

    name = "local"

    def __init__(self, run: LocalRun) -> None:
        self._kafka = run.kafka
        # A secure broker: each process gets its own identity.
        self._credentials = run.broker.credentials if run.broker is not None else None
        self.run_dir = run.run_dir
        self.broker = run.broker
        self.state_file = run.state_file
        self._patients: list[tuple[str, subprocess.Popen[bytes], int]] = []
        self._patient_numbers = itertools.count(1)
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

    def start(self) -> None:
        """Start the design's makers and the supervisor, and wait until they serve.

        A start that fails stops whatever it had started (makers, the dispatcher and its keeper,
        the supervisor) before it raises: its caller has no platform to stop, and a supervisor
        left running would start the broker again after its owner stopped it. A wait that timed
        out is a `PlatformError` like any other reason the platform did not come up.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Processes append to their logs: a start clears the last run's, so that the diagnostics
        # of a run hold that run only.
        shutil.rmtree(self.run_dir / "logs", ignore_errors=True)
        try:
            self._start_makers()
            self._supervisor.start()
            self._wait_until_serving()
        except BaseException as error:
            self.stop()
            if isinstance(error, WaitTimeout):
                raise PlatformError(str(error)) from error
            raise
        progress.say(f"local platform up: Kafka {self.bootstrap_servers}, {self._describe()}")

    def stop(self) -> None:
        """Patients first (no new orders), then the makers, then the supervisor."""
        self.scale_patients(0)
        self._stopping.set()
        self._stop_makers()
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
            # The load generator must not starve the broker and the makers it measures: on a
            # cluster the pods' CPU requests weigh them, here every process is a session of its
            # own (60 patients stopping at once once held the broker past the makers' 1 s
            # session, issue 17).
            processes.yield_cpu(process.pid)
            self._patients.append((name, process, time.time_ns()))
        surplus = self._patients[count:]
        del self._patients[count:]
        processes.stop_all([process for _, process, _ in surplus])

    def patients(self) -> int:
        return sum(1 for _, process, _ in self._patients if process.poll() is None)

    def lag(self) -> int:
        if self._offsets is None:
            raise PlatformError("the local platform is not started")
        return self._offsets.total_lag()

    def dump_diagnostics(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        logs = self.run_dir / "logs"
        if logs.exists():
            shutil.copytree(logs, directory / "logs", dirs_exist_ok=True)
        if self.broker is not None and self.broker.log_file.exists():
            shutil.copy(self.broker.log_file, directory / "kafka-server.log")
        status = self._status_lines()
        if status:
            lines = [*status, f"broker restarts: {self.broker_restarts}"]
            (directory / f"{self.design}-status.txt").write_text("\n".join(lines) + "\n")

    def snapshot(self) -> state.LocalState:
        broker = self.broker
        broker_pid = broker.pid if broker is not None else None
        return state.LocalState(
            owner_pid=os.getpid(),
            bootstrap=self.kafka.kafka_bootstrap,
            group_id=self._group_id(),
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
            makers=self._running_makers(),
            warm_makers=self.warm_makers(),
            updated_at_ns=time.time_ns(),
        )

    # -- processes -----------------------------------------------------------------------------

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

    # -- the design's hooks --------------------------------------------------------------------

    design: str
    """`scaledjob` or `dispatcher` (the status file of the diagnostics is named after it)."""

    @property
    @abc.abstractmethod
    def jobs_created(self) -> int:
        """Makers started so far (every Job a cluster would have created)."""

    @abc.abstractmethod
    def _start_makers(self) -> None:
        """Start what starts the makers; set `_offsets` to the group whose lag is the backlog."""

    @abc.abstractmethod
    def _wait_until_serving(self) -> None:
        """Until the first order would be served like the others (with progress, bounded)."""

    @abc.abstractmethod
    def _describe(self) -> str:
        """The design's part of the line that says the platform is up."""

    @abc.abstractmethod
    def _stop_makers(self) -> None:
        """Stop what `_start_makers` started, and every maker still running."""

    @property
    def group_id(self) -> str:
        """The consumer group of the design's makers (or of its dispatcher)."""
        return self._group_id()

    @abc.abstractmethod
    def _group_id(self) -> str:
        """The consumer group of the state file (the one the chaos probes read the lag of)."""

    @abc.abstractmethod
    def _running_makers(self) -> list[state.ProcessInfo]: ...

    @abc.abstractmethod
    def _status_lines(self) -> list[str]:
        """What the diagnostics say of the design's makers (none before `start`)."""
