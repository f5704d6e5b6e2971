"""What the harness reads of a process through psutil: the host's command lines and parents (the
cluster here's teardown), and CPU seconds (the bench), including after the process has gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_medpubsub import processes
from pytest_medpubsub.bench.cpu import CpuSampler
from pytest_medpubsub.here import host
from pytest_medpubsub.waiting import wait_until
from tests.conftest import Spawn, wait_for_exec

BUSY = [sys.executable, "-c", "while True: pass", "medpubsub-test-busy"]


def wait_for_cpu(read: Callable[[], float | None], seconds: float, what: str) -> float:
    """Wait until `read` (CPU seconds of `what`) reaches `seconds`; return the reading."""
    spent = wait_until(
        read,
        lambda value: value is not None and value >= seconds,
        30,
        f"{what} to spend {seconds} CPU seconds",
        interval_s=0.05,
    )
    assert spent is not None
    return spent


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    """A process that spends one whole CPU until stopped."""
    process = processes.spawn(BUSY)
    try:
        wait_for_exec(process, BUSY)
        yield process
    finally:
        processes.kill(process)


def test_the_host_s_processes_include_a_child_with_its_arguments_and_parent(
    spawned: Spawn,
) -> None:
    child = spawned("medpubsub-test-host")

    argv = dict(host.processes())[child.pid]
    assert argv[-1] == "medpubsub-test-host"
    assert host.parents()[child.pid] == os.getpid()
    assert all(argv for _, argv in host.processes())  # kernel threads are left out


def test_cpu_seconds_count_what_a_busy_process_spent_and_none_once_it_is_gone(
    busy: subprocess.Popen[bytes],
) -> None:
    started = time.monotonic()
    spent = wait_for_cpu(lambda: processes.cpu_seconds(busy.pid), 0.3, f"pid {busy.pid}")
    # One thread cannot spend more CPU than the time that has passed (a wrong clock-tick unit
    # would); the process started before `started`, hence the margin.
    assert spent <= time.monotonic() - started + 1.0
    processes.kill(busy)
    assert processes.cpu_seconds(busy.pid) is None


def test_the_sampler_keeps_a_process_s_last_reading_after_it_has_gone(
    busy: subprocess.Popen[bytes],
) -> None:
    with CpuSampler(lambda: [busy.pid], interval_s=0.05) as sampler:
        wait_for_cpu(lambda: sampler.total_s, 0.2, f"pid {busy.pid}, as sampled,")
        processes.kill(busy)
        last = sampler.total_s
    assert sampler.total_s >= last >= 0.2
    assert sampler.processes == 1


def test_the_sampler_counts_a_process_already_running_only_from_when_it_started(
    busy: subprocess.Popen[bytes],
) -> None:
    """A warm maker's start is not the run's: what it spent before the sampler is left out."""
    wait_for_cpu(lambda: processes.cpu_seconds(busy.pid), 0.3, f"pid {busy.pid}, before sampling,")
    with CpuSampler(lambda: [busy.pid], interval_s=0.05) as sampler:
        wait_for_cpu(lambda: sampler.total_s, 0.1, f"pid {busy.pid}, as sampled,")
    now = processes.cpu_seconds(busy.pid)
    assert now is not None
    assert 0.1 <= sampler.total_s <= now - 0.3


def _autogroup_priority(pid: int) -> int | None:
    """The nice value of `pid`'s autogroup; None without autogroup or in the default group."""
    try:
        with open(f"/proc/{pid}/autogroup") as text:
            shown = text.read()
    except FileNotFoundError:
        return None
    # "/autogroup-<id> nice <n>", or nothing for the default group (e.g. a CI runner's).
    return int(shown.split("nice")[1]) if shown.strip() else None


def test_a_process_that_yields_the_cpu_weighs_least_and_the_harness_keeps_its_own_weight(
    busy: subprocess.Popen[bytes],
) -> None:
    own = (os.getpriority(os.PRIO_PROCESS, os.getpid()), _autogroup_priority(os.getpid()))
    processes.yield_cpu(busy.pid)
    assert os.getpriority(os.PRIO_PROCESS, busy.pid) == processes.LOWEST_PRIORITY
    assert _autogroup_priority(busy.pid) in (None, processes.LOWEST_PRIORITY)
    assert (os.getpriority(os.PRIO_PROCESS, os.getpid()), _autogroup_priority(os.getpid())) == own


def test_yielding_the_cpu_of_a_process_that_is_gone_is_no_error() -> None:
    # A pid above the kernel's largest cannot name a process: a reaped child's pid could be
    # taken again by another process, which this must not renice.
    with open("/proc/sys/kernel/pid_max") as text:
        gone = int(text.read()) + 1
    processes.yield_cpu(gone)
