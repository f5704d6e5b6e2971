"""Patient load from Locust: running `load/patients.py` headless, in the background or to the end.

The ramp format and the environment contract with the locustfile are in `load_ramp.py`, Locust's
figures in `load_results.py`; both are re-exported here. This module imports neither Locust nor
pytest: Locust monkey-patches the standard library with gevent when
it is imported, which must never happen inside the test process (the observer's and the
platform's threads would become greenlets), so Locust always runs as a child process here.

A run writes Locust's CSV files (`locust_stats.csv`, ...), its HTML report, its log and the ids of
the acknowledged orders into one directory, and is bounded in time: past its deadline it is
stopped by pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes, progress, project
from pytest_medpubsub.kafka.security import as_identity
from pytest_medpubsub.load_ramp import (
    ACK_TIMEOUT_ENV,
    ACKS_FILE_ENV,
    RAMP_ENV,
    STOP_FILE_ENV,
    SUMMARY_FILE_ENV,
    RampError,
    RampStep,
    format_ramp,
    parse_ramp,
    ramp_duration_s,
    step_at,
)
from pytest_medpubsub.load_results import (
    LoadSummary,
    LocustResult,
    LocustStats,
    parse_failures_csv,
    parse_stats_csv,
)
from pytest_medpubsub.waiting import wait_for

__all__ = [
    "ACKS_FILE_ENV",
    "ACK_TIMEOUT_ENV",
    "RAMP_ENV",
    "STOP_FILE_ENV",
    "SUMMARY_FILE_ENV",
    "LocustLoad",
    "LocustProcess",
    "LocustResult",
    "LocustStats",
    "RampError",
    "RampStep",
    "acknowledged_ids",
    "format_ramp",
    "kafka_environment",
    "locustfile",
    "parse_failures_csv",
    "parse_ramp",
    "parse_stats_csv",
    "ramp_duration_s",
    "run_locust",
    "step_at",
]

if TYPE_CHECKING:  # the plugin hands a system over; the locustfile never needs it
    from pytest_medpubsub.system import MedpubsubSystem

LOCUSTFILE = Path("load/patients.py")
CSV_PREFIX = "locust"
# Users still waiting for an acknowledgement when a step ends get this long to finish it.
STOP_TIMEOUT_S = 10
# Locust's start (imports, gevent) and its end (flushing producers, writing CSV and HTML).
STARTUP_MARGIN_S = 30.0
SHUTDOWN_MARGIN_S = 30.0

_OWNED_PREFIXES = ("MEDPUBSUB_", "MEDICINE_")


# ------------------------------------------------------------------ running Locust


def locustfile() -> Path:
    """`load/patients.py` of the checkout (see `project.project_dir`)."""
    return project.project_dir() / LOCUSTFILE


def kafka_environment(kafka: KafkaSettings) -> dict[str, str]:
    """`MEDPUBSUB_*` variables that make a child process reach `kafka` exactly as we do."""
    prefix = str(KafkaSettings.model_config.get("env_prefix", ""))
    return {
        f"{prefix}{field}".upper(): str(value)
        for field, value in kafka.model_dump().items()
        if value is not None
    }


class LocustProcess:
    """`locust -f load/patients.py --headless` with a ramp shape, as a child process.

    `start()` launches it; `wait()` waits for the ramp to end (stopping it by pid past the
    deadline); `stop()` asks it to end now, the way the ramp's own end does (a stop file the
    shape reads), so that every patient's last order is still acknowledged and counted.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        ramp: str | Sequence[RampStep],
        out_dir: Path,
        *,
        patient_prefix: str = "locust",
        period_s: float | None = None,
        ack_timeout_s: float | None = None,
        locust_file: Path | None = None,
    ):
        self.steps = parse_ramp(ramp) if isinstance(ramp, str) else tuple(ramp)
        self.ramp = format_ramp(self.steps)
        self.kafka = kafka
        self.out_dir = out_dir.resolve()
        self.patient_prefix = patient_prefix
        self.period_s = period_s
        self.ack_timeout_s = ack_timeout_s
        self.locust_file = locust_file or locustfile()
        self.deadline_s = (
            ramp_duration_s(self.steps) + STARTUP_MARGIN_S + STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._stopped_early = False
        self._timed_out = False
        self._result: LocustResult | None = None

    @property
    def acks_file(self) -> Path:
        return self.out_dir / "acknowledged-orders.txt"

    @property
    def summary_file(self) -> Path:
        return self.out_dir / "locust-summary.json"

    @property
    def stop_file(self) -> Path:
        return self.out_dir / "stop"

    @property
    def log_file(self) -> Path:
        return self.out_dir / "locust.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "locust",
            "-f", str(self.locust_file),
            "--headless",
            "--csv", str(self.out_dir / CSV_PREFIX),
            "--html", str(self.out_dir / "locust.html"),
            "--stop-timeout", str(STOP_TIMEOUT_S),
            "--exit-code-on-error", "1",
            "--only-summary",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The caller's environment without our settings (ORBITAL_* patient settings stay), then
        where Kafka is, the ramp, and the files this run reads and writes."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWNED_PREFIXES)}
        env.update(kafka_environment(self.kafka))
        env.update(
            {
                RAMP_ENV: self.ramp,
                ACKS_FILE_ENV: str(self.acks_file),
                STOP_FILE_ENV: str(self.stop_file),
                SUMMARY_FILE_ENV: str(self.summary_file),
                "ORBITAL_PATIENT_ID": self.patient_prefix,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.period_s is not None:
            env["ORBITAL_ORDER_PERIOD_SECONDS"] = str(self.period_s)
        if self.ack_timeout_s is not None:
            env[ACK_TIMEOUT_ENV] = str(self.ack_timeout_s)
        return env

    def start(self) -> LocustProcess:
        if self._process is not None:
            raise RuntimeError("a LocustProcess runs once; create another one to run again")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in (self.stop_file, self.acks_file, self.summary_file):
            stale.unlink(missing_ok=True)
        self._process = processes.spawn(
            self.command(), env=self.environment(), log_path=self.log_file, cwd=self.out_dir
        )
        self._started = time.monotonic()
        progress.say(f"Locust patients ({self.ramp}) started, pid {self._process.pid}")
        return self

    def acknowledged(self) -> int:
        """Orders acknowledged so far (the patients append one line per acknowledgement)."""
        try:
            with self.acks_file.open("rb") as handle:
                return sum(1 for _ in handle)
        except FileNotFoundError:
            return 0

    def wait_for_acknowledgements(self, count: int, timeout_s: float) -> int:
        """Wait until the patients had `count` orders acknowledged (the load is flowing)."""

        def flowing() -> bool:
            if not self.running() and self.acknowledged() < count:
                raise RuntimeError(f"Locust exited early: {self._log_tail()}")
            return self.acknowledged() >= count

        wait_for(flowing, timeout_s, f"{count} orders acknowledged by Locust's patients", 0.2)
        return self.acknowledged()

    def wait(self, timeout_s: float | None = None) -> LocustResult:
        """Wait for the ramp to end; past `timeout_s` (default: the ramp plus margins) stop it."""
        process = self._require_process()
        remaining = (timeout_s if timeout_s is not None else self.deadline_s) - (
            time.monotonic() - self._started
        )
        try:
            process.wait(timeout=max(0.0, remaining))
        except subprocess.TimeoutExpired:
            self._timed_out = True
            progress.say(f"Locust (pid {process.pid}) overran its deadline; stopping it")
            processes.stop(process, grace_s=SHUTDOWN_MARGIN_S)
        return self.result()

    def stop(self, grace_s: float = STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S) -> LocustResult:
        """End the run now: the shape sees the stop file and ends like a finished ramp (users
        stop, last orders are acknowledged, CSV written); SIGTERM / SIGKILL if that hangs."""
        process = self._require_process()
        if process.poll() is None:
            self._stopped_early = True
            self.stop_file.touch()
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._timed_out = True
                progress.say(f"Locust (pid {process.pid}) did not stop in {grace_s:g} s; killing")
                processes.stop(process, grace_s=10)
        return self.result()

    def kill(self) -> None:
        """Stop it at once by pid (SIGTERM, then SIGKILL); nothing when it has ended."""
        if self._process is not None and self._process.poll() is None:
            self._stopped_early = True
            processes.stop(self._process, grace_s=10)

    def result(self) -> LocustResult:
        """The figures of the finished run (read once from its CSV files)."""
        process = self._require_process()
        if process.poll() is None:
            raise RuntimeError("Locust is still running; wait() or stop() it first")
        if self._result is None:
            stats_csv = self.out_dir / f"{CSV_PREFIX}_stats.csv"
            errors = parse_failures_csv(self.out_dir / f"{CSV_PREFIX}_failures.csv")
            if self.summary_file.exists():  # the final figures (the CSV lags by up to 1 s)
                summary = LoadSummary.model_validate_json(self.summary_file.read_text())
                stats, errors = summary.stats, summary.errors
            elif stats_csv.exists():  # killed before it could write them
                stats = parse_stats_csv(stats_csv)
            else:
                errors.append(f"no {stats_csv.name}: {self._log_tail()}")
                stats = LocustStats(
                    requests=0, failures=0, median_ms=None, average_ms=None,
                    p95_ms=None, p99_ms=None, max_ms=None, requests_per_s=None,
                )  # fmt: skip
            self._result = LocustResult(
                ramp=self.ramp,
                exit_code=process.returncode,
                stopped_early=self._stopped_early,
                timed_out=self._timed_out,
                duration_s=round(time.monotonic() - self._started, 2),
                stats=stats,
                errors=errors,
                acknowledged_orders=self.acknowledged(),
                out_dir=str(self.out_dir),
            )
            progress.say(self._result.describe())
        return self._result

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("Locust has not been started")
        return self._process

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "no log"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "empty log"


def run_locust(
    kafka: KafkaSettings,
    ramp: str | Sequence[RampStep],
    out_dir: Path,
    timeout_s: float | None = None,
    **options: Any,
) -> LocustResult:
    """Run a Locust ramp to its end (bounded by `timeout_s`) and return its figures."""
    process = LocustProcess(kafka, ramp, out_dir, **options).start()
    try:
        return process.wait(timeout_s)
    finally:
        process.kill()  # interrupted (Ctrl-C): never leave Locust behind


class LocustLoad:
    """What the `medpubsub_locust` fixture hands a test: Locust ramps against its system.

    Each run writes into `<report dir>/<name>/` and its figures go into the test's report under
    `name`, next to the observer's.
    """

    def __init__(self, system: MedpubsubSystem, locust_file: Path | None = None):
        self.system = system
        self.locust_file = locust_file

    def run(
        self,
        ramp: str | Sequence[RampStep],
        name: str = "locust",
        timeout_s: float | None = None,
        **options: Any,
    ) -> LocustResult:
        """Run `ramp` to its end; returns (and attaches) Locust's figures."""
        with progress.step(f"Locust ramp {ramp if isinstance(ramp, str) else format_ramp(ramp)}"):
            platform = self.system.platform
            result = run_locust(
                as_identity(platform.kafka, platform.credentials, "patient"),
                ramp,
                self.system.report_dir / name,
                timeout_s,
                locust_file=self.locust_file,
                patient_prefix=f"{name}-patient",
                **options,
            )
        self.system.attach(name, result.to_report())
        return result


def acknowledged_ids(out_dir: Path) -> list[str]:
    """The ids of the orders a finished run's patients had acknowledged."""
    path = out_dir / "acknowledged-orders.txt"
    return path.read_text().split() if path.exists() else []
