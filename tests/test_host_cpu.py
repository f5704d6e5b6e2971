"""The machine's CPU share and the quiet wait's settings, table-driven; one real reading."""

from __future__ import annotations

import psutil
import pytest

from pytest_medpubsub.host_cpu import (
    CLUSTER_QUIET_TIMEOUT_S,
    CpuShare,
    QuietWait,
    share_between,
    wait_until_quiet,
)

IDLE = {"user": 0.0, "nice": 0.0, "system": 0.0, "idle": 0.0, "iowait": 0.0, "steal": 0.0}


def spent(**seconds: float) -> dict[str, float]:
    return IDLE | seconds


@pytest.mark.parametrize(
    ("after", "busy", "steal", "iowait"),
    [
        (spent(idle=10.0), 0.0, 0.0, 0.0),
        (spent(user=6.0, system=2.0, idle=2.0), 0.8, 0.0, 0.0),
        # Stolen time is busy for the machine we measure: someone else had the CPU.
        (spent(user=5.0, steal=5.0), 1.0, 0.5, 0.0),
        # Waiting on a disk is not busy.
        (spent(user=2.0, iowait=3.0, idle=5.0), 0.2, 0.0, 0.3),
        # Guest time is already inside user on Linux: counting it again would double it.
        (spent(user=4.0, idle=4.0) | {"guest": 4.0, "guest_nice": 1.0}, 0.5, 0.0, 0.0),
        # No time passed: nothing is known, and nothing is divided by zero.
        (spent(), 0.0, 0.0, 0.0),
    ],
)
def test_the_share_of_each_kind_of_time(
    after: dict[str, float], busy: float, steal: float, iowait: float
) -> None:
    share = share_between(IDLE, after, cpus=2, seconds=5.0)
    assert (share.busy, share.steal, share.iowait) == pytest.approx((busy, steal, iowait))


def test_counters_are_differences_not_totals() -> None:
    before = spent(user=100.0, idle=900.0)
    after = spent(user=103.0, idle=901.0)
    assert share_between(before, after, cpus=2, seconds=2.0).busy == pytest.approx(0.75)


def test_the_description_names_busy_steal_iowait_and_cpus() -> None:
    share = CpuShare(busy=0.84, steal=0.03, iowait=0.01, cpus=2, seconds=61.4)
    assert share.describe() == (
        "the machine was 84 % busy over 61 s (2 CPUs; steal 3 %, iowait 1 %)"
    )


@pytest.mark.parametrize(
    ("percent", "timeout", "on_cluster", "expected"),
    [
        ("75", "", True, QuietWait(0.75, CLUSTER_QUIET_TIMEOUT_S)),
        ("75", "", False, QuietWait(0.75, 0.0)),
        ("50", "30", False, QuietWait(0.5, 30.0)),
        ("100", "0", True, QuietWait(1.0, 0.0)),
    ],
)
def test_quiet_wait_from_the_ini(
    percent: str, timeout: str, on_cluster: bool, expected: QuietWait
) -> None:
    assert QuietWait.parse(percent, timeout, on_cluster) == expected


@pytest.mark.parametrize(
    ("percent", "timeout", "message"),
    [
        ("lots", "", "medpubsub_quiet_cpu_percent='lots' is not a number"),
        ("0", "", "medpubsub_quiet_cpu_percent='0' is not in (0, 100]"),
        ("150", "", "medpubsub_quiet_cpu_percent='150' is not in (0, 100]"),
        ("75", "soon", "medpubsub_quiet_timeout_s='soon' is not a number of seconds"),
        ("75", "-1", "medpubsub_quiet_timeout_s='-1' is negative"),
    ],
)
def test_quiet_wait_mistakes_are_one_sentence(percent: str, timeout: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^medpubsub_quiet_") as raised:
        QuietWait.parse(percent, timeout, on_cluster=True)
    assert str(raised.value) == message


def test_a_real_window_reads_this_machine() -> None:
    # Any machine is at most 100 % busy: the wait ends after its first window.
    share = wait_until_quiet(max_busy=1.0, timeout_s=60.0, window_s=0.3)
    assert share.cpus == psutil.cpu_count()
    assert 0.0 <= share.busy <= 1.0
    assert share.seconds >= 0.3
