"""One benchmark run: one design at one load, on the shared broker, measured like a test.

The platform starts (warm makers ready, as `medpubsub up` has them), `patients` order for the
run's duration, the makers drain every order, and the figures are read from the observer: the
latency percentiles of the orders placed after a 10 s warm-up, peak makers, process starts per
order, CPU. The warm-up leaves out the step from 0 to `patients` at once: the patient processes
starting together and KEDA scaling out for the step (the step-ramp scenario holds that
transient to its SLOs); `p95_with_warm_up_s` keeps the p95 of every order, the step included.

Beside latency, a run says what it cost and what held it back (capacity.py): CPU per order of the
makers, the broker and the harness (the patients, and this process, which observes), the peak
makers against what the load needs, and which bound it reached: the machine's CPU, the makers'
bound or the partitions.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs, progress
from pytest_medpubsub.bench.capacity import FLOOR_S, read_capacity
from pytest_medpubsub.bench.cpu import CpuSampler
from pytest_medpubsub.bench.rows import BenchRow
from pytest_medpubsub.host_cpu import CpuWindow
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.offsets import move_group_to_end
from pytest_medpubsub.keda.scaledjob import load_scaled_job
from pytest_medpubsub.observer import Observer, PlatformSample
from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem
from pytest_medpubsub.processes import cpu_seconds
from pytest_medpubsub.reports.settings import run_settings
from pytest_medpubsub.run_end import end_run

__all__ = ["FLOOR_S", "RunFigures", "run_once"]

WARM_UP_S = 10.0
DRAIN_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class RunFigures:
    design: str
    patients: int
    duration_s: float
    orders: int
    complete_orders: int
    lost_orders: int
    duplicate_tabs: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None
    p95_with_warm_up_s: float | None
    peak_makers: int | None
    makers_started: int
    starts_per_order: float | None
    maker_cpu_s: float
    broker_cpu_s: float | None
    drain_s: float
    # Added after the runs of 2026-12-01 (None in an older bench.json).
    harness_cpu_s: float | None = None
    machine_busy: float | None = None  # 0-1, from the step to the load's end
    makers_needed: int | None = None  # what the load's orders in flight need (capacity.py)
    warm_floor: int | None = None
    bound: str | None = None  # the bounds reached ("none": within all of them)

    def cpu_ms_per_order(self, seconds: float | None) -> float | None:
        """CPU milliseconds per order placed, of `seconds` spent over the run."""
        if seconds is None or not self.orders:
            return None
        return round(seconds * 1000 / self.orders, 1)

    def ratio(self, value: float | None) -> float | None:
        return None if value is None else round(value / FLOOR_S, 3)

    def to_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["ratio_to_floor"] = {
            name: self.ratio(getattr(self, f"{name}_s")) for name in ("p50", "p95", "p99", "max")
        }
        return figures


def run_once(
    design: BenchRow,
    manifest: Path,
    *,
    patients: int,
    duration_s: float,
    kafka: KafkaSettings,
    broker: EmbeddedKafka | None,
    run_dir: Path,
) -> RunFigures:
    """Run `design` with `patients` for `duration_s` and measure it (see the module docstring)."""
    capacity = design.capacity(load_scaled_job(manifest))
    platform = _platform(design, manifest, kafka=kafka, broker=broker, run_dir=run_dir)
    # The rows share the broker: the orders already on the topic are the earlier rows', made or
    # counted lost there, not this run's backlog (another design's group has not read them).
    skipped = move_group_to_end(kafka, platform.group_id, kafka.orders_topic)
    if skipped:
        progress.say(f"{design.name}: group {platform.group_id} starts past {skipped} orders")
    platform.start()
    # From here: what the run costs, not the platform's start (warm makers, topics).
    broker_before = _broker_cpu(broker)
    harness_before = _own_cpu()
    try:
        observer = Observer(kafka, sampler=lambda: _sample(platform)).start()
        try:
            with contextlib.ExitStack() as sampling:
                cpu = sampling.enter_context(CpuSampler(lambda: _cpu_pids(platform)))
                patients_cpu = sampling.enter_context(
                    CpuSampler(lambda: [p.pid for p in platform.snapshot().patients])
                )
                step = observer.mark()
                machine = CpuWindow()
                platform.scale_patients(patients)
                time.sleep(WARM_UP_S)
                since = observer.mark()
                time.sleep(max(0.0, duration_s - WARM_UP_S))
                busy = machine.share().busy
                progress.say(f"{design.name} at {patients} patients: the load ends")
                # The run's own report (report.json and plots), to look into a row of the table;
                # no SLOs: the table, not a verdict, is what the bench gives.
                ended = end_run(
                    platform,
                    observer,
                    since,
                    run_dir / "report",
                    drain_timeout_s=DRAIN_TIMEOUT_S,
                    spec=None,
                    design=design.platform,
                    settings=run_settings(
                        name=f"bench: {design.name} at {patients} patients",
                        platform="local",
                        design=design.platform,
                        secure=False,
                    ),
                    facts=lambda: {"bench": {"design": design.name}},
                    drained=sampling.close,  # the makers' CPU is what the drain ended with
                )
            whole_run = observer.summary(since=step, final=True)
            with_warm_up = whole_run.latency_s
        finally:
            observer.stop()
        started = platform.jobs_created
    finally:
        platform.stop()
    broker_after = _broker_cpu(broker)
    harness_cpu_s = patients_cpu.total_s + _own_cpu() - harness_before
    summary = ended.summary
    reading = read_capacity(
        patients, capacity, busy=busy, peak_makers=summary.max_jobs, orders_topic=kafka.orders_topic
    )
    latency = summary.latency_s
    return RunFigures(
        design=design.name,
        patients=patients,
        duration_s=duration_s,
        orders=summary.orders,
        complete_orders=summary.complete_orders,
        lost_orders=summary.lost_orders,
        duplicate_tabs=summary.duplicate_tabs,
        p50_s=latency.p50 if latency else None,
        p95_s=latency.p95 if latency else None,
        p99_s=latency.p99 if latency else None,
        max_s=latency.max if latency else None,
        p95_with_warm_up_s=with_warm_up.p95 if with_warm_up else None,
        peak_makers=summary.max_jobs,
        makers_started=started,
        # Every maker the run started, over every order it placed (warm-up included, as the
        # makers started for it are).
        starts_per_order=round(started / whole_run.orders, 3) if whole_run.orders else None,
        maker_cpu_s=round(cpu.total_s, 2),
        broker_cpu_s=(
            round(broker_after - broker_before, 2)
            if broker_before is not None and broker_after is not None
            else None
        ),
        drain_s=round(ended.drain_s, 2),
        harness_cpu_s=round(harness_cpu_s, 2),
        machine_busy=round(busy, 3),
        makers_needed=reading.need.needed,
        warm_floor=reading.need.floor,
        bound=reading.bound,
    )


def _platform(
    design: BenchRow,
    manifest: Path,
    *,
    kafka: KafkaSettings,
    broker: EmbeddedKafka | None,
    run_dir: Path,
) -> LocalSystem:
    return designs.design(design.platform).local_platform(
        LocalRun(kafka, run_dir, broker=broker), manifest=manifest
    )


def _cpu_pids(platform: LocalSystem) -> list[int]:
    """The makers' pids, and the dispatcher's: what the design spends beyond the broker."""
    pids = [maker.pid for maker in platform.snapshot().makers]
    dispatcher = getattr(platform, "dispatcher_pid", None)
    return [*pids, dispatcher] if isinstance(dispatcher, int) else pids


def _sample(platform: LocalSystem) -> PlatformSample:
    return PlatformSample(
        patients=platform.patients(), jobs=platform.medicine_jobs(), lag=platform.lag()
    )


def _own_cpu() -> float:
    """This process's CPU seconds: the observer's readers and samplers, the platform's loop."""
    return cpu_seconds(os.getpid()) or 0.0


def _broker_cpu(broker: EmbeddedKafka | None) -> float | None:
    pid = broker.pid if broker is not None else None
    return cpu_seconds(pid) if pid is not None else None
