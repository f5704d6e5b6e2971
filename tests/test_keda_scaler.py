"""Pin every rule of KEDA 2.20.2's ScaledJob + Kafka-scaler arithmetic with a table of cases.

The local platform's scale-out is only as trustworthy as these formulas, so each one (and each
KEDA quirk worth knowing) has its own table; see `pytest_medpubsub/keda/scaler.py` for the source
files they come from (the trigger's parsing is pinned in test_keda_trigger.py).

Why one module of this size (over 450 lines): it is tables, one per step of one computation
(lag, cap, activity, strategy, replica bounds, history), and the whole polls and properties at
the end compose those same steps with the same helpers; split, each part would import the rest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_medpubsub.keda.scaler import (
    FinishedJob,
    LagReading,
    MultipleScalersCalculation,
    PartitionLag,
    PartitionOffsets,
    ScalerState,
    ScalingSpec,
    ScalingStrategy,
    Strategy,
    cap_lag,
    effective_max_scale,
    finished_jobs_to_delete,
    is_active,
    jobs_to_create,
    next_state,
    partition_lag,
    poll,
    queue_length_and_activity,
    read_lag,
)
from pytest_medpubsub.keda.trigger import (
    KafkaTriggerMetadata,
    ScaledJobError,
)

TOPIC = "tabs.orders"
TRIGGER = KafkaTriggerMetadata(
    bootstrap_servers=("kafka:9092",), consumer_group="medicine", topic=TOPIC
)
EMPTY = ScalerState()
# The KEDA Kafka e2e trigger: 3 partitions, lagThreshold 1, activationLagThreshold 1.
E2E_TRIGGER = replace(TRIGGER, lag_threshold=1, activation_lag_threshold=1)


def offsets(*pairs: tuple[int, int], topic: str = TOPIC) -> list[PartitionOffsets]:
    """Partitions 0..n-1 of `topic` from (committed, end) pairs."""
    return [PartitionOffsets(topic, i, committed, end) for i, (committed, end) in enumerate(pairs)]


def spec(
    strategy: Strategy = "default",
    *,
    max_replica_count: int | None = 10,
    min_replica_count: int = 0,
    deduction: int | None = None,
    percentage: str | None = None,
    calculation: MultipleScalersCalculation = "max",
) -> ScalingSpec:
    return ScalingSpec(
        max_replica_count=max_replica_count,
        min_replica_count=min_replica_count,
        scaling_strategy=ScalingStrategy(
            strategy=strategy,
            custom_scaling_queue_length_deduction=deduction,
            custom_scaling_running_job_percentage=percentage,
            multiple_scalers_calculation=calculation,
        ),
    )


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message
    assert message.endswith(".")


# --------------------------------------------------------------------------- lag per partition


@pytest.mark.parametrize(
    ("committed", "end", "changes", "previous", "expected"),
    [
        pytest.param(5, 12, {}, None, PartitionLag(7, 7), id="committed"),
        pytest.param(12, 12, {}, None, PartitionLag(0, 0), id="caught-up"),
        pytest.param(-1, 500, {}, None, PartitionLag(1, 1), id="latest-no-commit-counts-1"),
        pytest.param(-1, 0, {}, None, PartitionLag(1, 1), id="latest-no-commit-empty-topic"),
        pytest.param(
            -1,
            500,
            {"scale_to_zero_on_invalid_offset": True},
            None,
            PartitionLag(0, 0),
            id="latest-no-commit-scale-to-zero",
        ),
        pytest.param(
            -1,
            500,
            {"offset_reset_policy": "earliest"},
            None,
            PartitionLag(500, 500),
            id="earliest-no-commit-counts-log-end",
        ),
        pytest.param(
            -1,
            500,
            {"offset_reset_policy": "earliest", "scale_to_zero_on_invalid_offset": True},
            None,
            PartitionLag(0, 0),
            id="earliest-no-commit-scale-to-zero",
        ),
        pytest.param(
            5,
            12,
            {"exclude_persistent_lag": True},
            None,
            PartitionLag(7, 7),
            id="persistent-first-poll-counts",
        ),
        pytest.param(
            5,
            12,
            {"exclude_persistent_lag": True},
            5,
            PartitionLag(0, 7),
            id="persistent-stuck-sizes-0-activates-7",
        ),
        pytest.param(
            6,
            12,
            {"exclude_persistent_lag": True},
            5,
            PartitionLag(6, 6),
            id="persistent-moved-counts",
        ),
        pytest.param(5, 12, {}, 5, PartitionLag(7, 7), id="stuck-counts-without-exclude"),
        pytest.param(
            -1,
            500,
            {"exclude_persistent_lag": True},
            -1,
            PartitionLag(1, 1),
            id="persistent-never-applies-to-no-commit",
        ),
    ],
)
def test_partition_lag(
    committed: int,
    end: int,
    changes: dict[str, Any],
    previous: int | None,
    expected: PartitionLag,
) -> None:
    state = ScalerState({} if previous is None else {(TOPIC, 0): previous})
    lag = partition_lag(
        PartitionOffsets(TOPIC, 0, committed, end), replace(TRIGGER, **changes), state
    )
    assert lag == expected


def test_next_state_remembers_valid_commits_only_under_exclude_persistent_lag() -> None:
    partitions = offsets((5, 9), (-1, 3), (7, 7))
    remembered = {(TOPIC, 1): 2, ("other", 0): 4}
    assert next_state(partitions, TRIGGER, ScalerState(remembered)).previous_offsets == remembered
    after = next_state(
        partitions, replace(TRIGGER, exclude_persistent_lag=True), ScalerState(remembered)
    )
    # -1 is not recorded (the old value stays); partitions not polled are never forgotten.
    assert after.previous_offsets == {(TOPIC, 0): 5, (TOPIC, 1): 2, (TOPIC, 2): 7, ("other", 0): 4}


# --------------------------------------------------------------------------- cap and activation


@pytest.mark.parametrize(
    ("total", "partitions", "with_lag", "changes", "expected"),
    [
        pytest.param(2, 3, 2, {"lag_threshold": 1}, 2, id="below-cap"),
        pytest.param(3, 3, 3, {"lag_threshold": 1}, 3, id="at-cap"),
        pytest.param(7, 3, 3, {"lag_threshold": 1}, 3, id="above-cap-T1"),
        pytest.param(39, 3, 3, {}, 39, id="T10-39-not-capped-asks-P+1"),
        pytest.param(40, 3, 3, {}, 30, id="T10-40-capped"),
        pytest.param(1000, 3, 3, {}, 30, id="T10-1000-capped"),
        pytest.param(1000, 3, 3, {"allow_idle_consumers": True}, 1000, id="allow-idle"),
        pytest.param(25, 3, 1, {"limit_to_partitions_with_lag": True}, 10, id="limit-1-lagging"),
        pytest.param(25, 3, 2, {"limit_to_partitions_with_lag": True}, 25, id="limit-2-lagging"),
        pytest.param(0, 3, 0, {"limit_to_partitions_with_lag": True}, 0, id="limit-none-lagging"),
        pytest.param(-5, 3, 0, {}, -5, id="negative-untouched"),
    ],
)
def test_cap_lag(
    total: int, partitions: int, with_lag: int, changes: dict[str, Any], expected: int
) -> None:
    assert cap_lag(total, partitions, with_lag, replace(TRIGGER, **changes)) == expected


def test_cap_allows_p_plus_1_jobs_when_threshold_above_1() -> None:
    """3 partitions, lagThreshold 10, lag 39: 39 // 10 = 3 is not above 3, so 4 jobs start."""
    partitions = offsets((0, 13), (0, 13), (0, 13))
    result = poll(partitions, TRIGGER, spec(), running=0, pending=0, state=EMPTY)
    assert (result.lag.lag, result.jobs_to_create) == (39, 4)
    one_more = offsets((0, 14), (0, 13), (0, 13))
    result = poll(one_more, TRIGGER, spec(), running=0, pending=0, state=EMPTY)
    assert (result.lag.lag, result.jobs_to_create) == (30, 3)


@pytest.mark.parametrize(
    ("lag", "activation", "expected"),
    [
        pytest.param(0, 0, False, id="0-of-0"),
        pytest.param(1, 0, True, id="1-of-0"),
        pytest.param(1, 1, False, id="1-of-1-not-above"),
        pytest.param(2, 1, True, id="2-of-1"),
    ],
)
def test_is_active(lag: int, activation: int, expected: bool) -> None:
    assert is_active(lag, replace(TRIGGER, activation_lag_threshold=activation)) is expected


@pytest.mark.parametrize(
    ("partitions", "changes", "previous", "expected"),
    [
        pytest.param(
            offsets((0, 3), (0, 3), (0, 3)),
            {"lag_threshold": 1, "activation_lag_threshold": 5},
            {},
            LagReading(3, 9, 9, 3, 3, True),
            id="activation-sees-uncapped-total",
        ),
        pytest.param(
            offsets((0, 1), (0, 0), (0, 0)),
            {"lag_threshold": 1, "activation_lag_threshold": 1},
            {},
            LagReading(1, 1, 1, 3, 1, False),
            id="below-activation",
        ),
        pytest.param(
            offsets((5, 12), (3, 3)),
            {"exclude_persistent_lag": True},
            {(TOPIC, 0): 5},
            LagReading(0, 0, 7, 2, 0, True),
            id="persistent-lag-active-but-zero",
        ),
        pytest.param(
            offsets((5, 30), (3, 4), (-1, 8)),
            {"limit_to_partitions_with_lag": True, "lag_threshold": 5},
            {},
            LagReading(15, 27, 27, 3, 3, True),
            id="limit-counts-no-commit-partition-as-lagging",
        ),
        pytest.param(
            offsets((5, 30), (4, 4), (9, 9)),
            {"limit_to_partitions_with_lag": True, "lag_threshold": 5},
            {},
            LagReading(5, 25, 25, 3, 1, True),
            id="limit-one-lagging-partition",
        ),
        pytest.param(
            offsets((0, 5), (0, 5)) + offsets((0, 5), topic="other"),
            {"topic": ""},
            {},
            LagReading(15, 15, 15, 3, 3, True),
            id="no-topic-sums-every-topic",
        ),
    ],
)
def test_read_lag(
    partitions: list[PartitionOffsets],
    changes: dict[str, Any],
    previous: dict[tuple[str, int], int],
    expected: LagReading,
) -> None:
    reading, _ = read_lag(partitions, replace(TRIGGER, **changes), ScalerState(previous))
    assert reading == expected


# --------------------------------------------------------------------------- replica counts


@pytest.mark.parametrize(
    ("max_replica_count", "min_replica_count", "max_rc", "min_rc"),
    [
        pytest.param(None, 0, 100, 0, id="defaults"),
        pytest.param(None, 5, 100, 5, id="default-max-not-reduced-by-min"),
        pytest.param(10, 0, 10, 0, id="max-only"),
        pytest.param(10, 2, 8, 2, id="max-minus-min"),
        pytest.param(4, 4, 0, 4, id="min-equals-max"),
        pytest.param(3, 5, 3, 3, id="min-above-max-both-become-max"),
    ],
)
def test_replica_counts(
    max_replica_count: int | None, min_replica_count: int, max_rc: int, min_rc: int
) -> None:
    scaling = ScalingSpec(max_replica_count=max_replica_count, min_replica_count=min_replica_count)
    assert (scaling.max_rc, scaling.min_rc) == (max_rc, min_rc)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"max_replica_count": 0}, "maxReplicaCount", id="max-0"),
        pytest.param({"min_replica_count": -1}, "minReplicaCount", id="min-negative"),
        pytest.param({"polling_interval": 0}, "pollingInterval", id="polling-0"),
        pytest.param({"successful_jobs_history_limit": -1}, "successful", id="history-ok"),
        pytest.param({"failed_jobs_history_limit": -1}, "failed", id="history-failed"),
    ],
)
def test_scaling_spec_enforces_crd_minimums(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScaledJobError, match=fragment) as caught:
        replace(ScalingSpec(), **changes)
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"strategy": "fast"}, "strategy", id="strategy"),
        pytest.param({"multiple_scalers_calculation": "median"}, "multiple", id="calculation"),
        pytest.param({"custom_scaling_running_job_percentage": "inf"}, "finite", id="inf"),
        pytest.param({"custom_scaling_running_job_percentage": "NaN"}, "finite", id="nan"),
    ],
)
def test_scaling_strategy_rejects(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScaledJobError, match=fragment) as caught:
        replace(ScalingStrategy(), **changes)
    assert_one_sentence(str(caught.value))


# --------------------------------------------------------------------------- ScaledJob activity


@pytest.mark.parametrize(
    ("lag", "active", "calculation", "min_replica_count", "expected"),
    [
        pytest.param(5, True, "max", 0, (5, True), id="active"),
        pytest.param(5, False, "max", 0, (0, False), id="inactive-trigger-counts-0"),
        pytest.param(0, True, "max", 0, (0, False), id="max-needs-queue-above-0"),
        pytest.param(0, True, "sum", 0, (0, True), id="sum-takes-active-0"),
        pytest.param(0, True, "min", 0, (0, True), id="min-takes-active-0"),
        pytest.param(0, False, "max", 1, (0, True), id="min-replicas-force-active"),
        pytest.param(5, False, "max", 1, (0, True), id="forced-active-but-queue-0"),
        pytest.param(-3, True, "max", 0, (0, False), id="negative-lag-reported-as-0"),
    ],
)
def test_queue_length_and_activity(
    lag: int,
    active: bool,
    calculation: MultipleScalersCalculation,
    min_replica_count: int,
    expected: tuple[int, bool],
) -> None:
    scaling = spec(calculation=calculation, min_replica_count=min_replica_count)
    assert queue_length_and_activity(lag, active, scaling) == expected


# --------------------------------------------------------------------------- strategies


# (strategy, lag, running, pending, expected jobs) with lagThreshold 1 and maxReplicaCount 10.
@pytest.mark.parametrize(
    ("strategy", "lag", "running", "pending", "expected"),
    [
        pytest.param("default", 5, 0, 0, 5, id="default: idle"),
        pytest.param("default", 5, 2, 0, 3, id="default: running-subtracted"),
        pytest.param("default", 5, 2, 2, 3, id="default: pending-ignored"),
        pytest.param("default", 5, 5, 0, 0, id="default: as-many-running-as-lag"),
        pytest.param("default", 5, 7, 0, 0, id="default: more-running-never-negative"),
        pytest.param("default", 20, 0, 0, 10, id="default: max-replica-count"),
        pytest.param("default", 20, 4, 4, 6, id="default: max-minus-running"),
        pytest.param("default", 0, 0, 0, 0, id="default: no-lag"),
        pytest.param("accurate", 5, 0, 0, 5, id="accurate: idle"),
        pytest.param("accurate", 5, 3, 1, 4, id="accurate: fits-minus-pending"),
        pytest.param("accurate", 5, 3, 3, 2, id="accurate: all-running-pending"),
        pytest.param("accurate", 8, 6, 0, 4, id="accurate: over-max-fills-to-max"),
        pytest.param("accurate", 8, 6, 5, 3, id="accurate: pending-keeps-it-under-max"),
        pytest.param("accurate", 10, 10, 0, 0, id="accurate: at-max"),
        pytest.param("accurate", 3, 5, 5, 0, id="accurate: more-pending-than-lag"),
        pytest.param("eager", 5, 0, 0, 5, id="eager: idle"),
        pytest.param("eager", 5, 3, 0, 5, id="eager: running-not-subtracted-from-lag"),
        pytest.param("eager", 5, 3, 3, 4, id="eager: pending-counted-twice"),
        pytest.param("eager", 5, 8, 0, 2, id="eager: room-left-under-max"),
        pytest.param("eager", 20, 0, 0, 10, id="eager: max-replica-count"),
        pytest.param("eager", 5, 6, 6, 0, id="eager: no-room"),
    ],
)
def test_strategy(strategy: Strategy, lag: int, running: int, pending: int, expected: int) -> None:
    assert jobs_to_create(lag, True, running, pending, spec(strategy), lag_threshold=1) == expected


@pytest.mark.parametrize(
    ("lag", "threshold", "expected"),
    [
        pytest.param(25, 10, 3, id="ceil-2.5"),
        pytest.param(20, 10, 2, id="exact"),
        pytest.param(1, 10, 1, id="ceil-0.1"),
        pytest.param(1000, 10, 10, id="max-replica-count"),
    ],
)
def test_default_strategy_divides_by_lag_threshold(lag: int, threshold: int, expected: int) -> None:
    assert jobs_to_create(lag, True, 0, 0, spec(), lag_threshold=threshold) == expected


@pytest.mark.parametrize(
    ("lag", "running", "deduction", "percentage", "expected"),
    [
        pytest.param(5, 0, None, "0.5", 5, id="idle"),
        pytest.param(5, 4, None, "0.5", 3, id="half-of-running"),
        pytest.param(5, 3, None, "0.5", 4, id="int-truncates-1.5"),
        pytest.param(5, 3, 1, "0.5", 3, id="deduction"),
        pytest.param(5, 3, 0, "1", 2, id="percentage-1-is-default"),
        pytest.param(5, 3, 0, "0", 5, id="percentage-0-ignores-running"),
        pytest.param(20, 5, 0, "0", 10, id="capped-at-maxRC-not-maxRC-minus-running"),
        pytest.param(2, 0, -5, "0", 2, id="negative-deduction-capped-by-lag"),
        pytest.param(5, 3, 1, None, 2, id="no-percentage-falls-back-to-default"),
        pytest.param(5, 3, 1, "abc", 2, id="bad-percentage-falls-back-to-default"),
        pytest.param(5, 3, 1, " 0.5", 2, id="space-is-bad-for-go-parsefloat"),
    ],
)
def test_custom_strategy(
    lag: int, running: int, deduction: int | None, percentage: str | None, expected: int
) -> None:
    scaling = spec("custom", deduction=deduction, percentage=percentage)
    assert jobs_to_create(lag, True, running, 0, scaling, lag_threshold=1) == expected


def test_custom_running_share_truncates_toward_zero() -> None:
    """int64(3 * -0.5) is -1 in Go (not -2): maxScale 8 - (-1) = 9 jobs, under maxRC 10."""
    scaling = spec("custom", percentage="-0.5")
    assert jobs_to_create(80, True, 3, 0, scaling, lag_threshold=10) == 9


@pytest.mark.parametrize(
    ("strategy", "max_scale", "running", "pending", "expected"),
    [
        pytest.param("default", 4, 1, 1, (3, 9), id="default-keeps-scale-to"),
        pytest.param("accurate", 4, 1, 1, (3, 9), id="accurate-keeps-scale-to"),
        pytest.param("eager", 4, 1, 1, (4, 10), id="eager-scale-to-is-maxRC"),
    ],
)
def test_effective_max_scale(
    strategy: Strategy, max_scale: int, running: int, pending: int, expected: tuple[int, int]
) -> None:
    assert effective_max_scale(max_scale, 9, running, pending, spec(strategy)) == expected


@pytest.mark.parametrize("strategy", ["default", "accurate", "eager", "custom"])
def test_inactive_trigger_creates_nothing(strategy: Strategy) -> None:
    scaling = spec(strategy, percentage="0.5")
    assert jobs_to_create(50, False, 0, 0, scaling, lag_threshold=1) == 0


# --------------------------------------------------------------------------- min / max replicas


@pytest.mark.parametrize(
    ("max_replica_count", "min_replica_count", "lag", "active", "running", "expected"),
    [
        pytest.param(10, 2, 50, True, 0, 2, id="below-min-tops-up-only"),
        pytest.param(10, 2, 0, False, 1, 1, id="below-min-even-when-inactive"),
        pytest.param(10, 2, 0, False, 2, 0, id="at-min-inactive"),
        pytest.param(10, 2, 1, False, 2, 0, id="forced-active-but-trigger-inactive"),
        pytest.param(10, 2, 5, True, 2, 5, id="running-min-not-subtracted"),
        pytest.param(10, 2, 20, True, 5, 5, id="maxRC-is-max-minus-min"),
        pytest.param(None, 5, 200, True, 5, 100, id="default-max-100-plus-min"),
        pytest.param(3, 5, 0, False, 0, 3, id="min-above-max-tops-up-to-max"),
        pytest.param(3, 5, 10, True, 3, 3, id="min-above-max-then-max-more"),
        pytest.param(4, 4, 10, True, 4, 0, id="min-equals-max-leaves-no-room"),
    ],
)
def test_min_and_max_replica_counts(
    *,
    max_replica_count: int | None,
    min_replica_count: int,
    lag: int,
    active: bool,
    running: int,
    expected: int,
) -> None:
    scaling = spec(max_replica_count=max_replica_count, min_replica_count=min_replica_count)
    assert jobs_to_create(lag, active, running, 0, scaling, lag_threshold=1) == expected


# --------------------------------------------------------------------------- history limits


def finished(name: str, succeeded: bool, at: float) -> FinishedJob:
    return FinishedJob(name=name, succeeded=succeeded, finished_at=at)


@pytest.mark.parametrize(
    ("jobs", "successful_limit", "failed_limit", "expected"),
    [
        pytest.param([finished("a", True, 1)], 1, 1, [], id="within-limits"),
        pytest.param(
            [
                finished("c", True, 3),
                finished("a", True, 1),
                finished("d", True, 4),
                finished("b", True, 2),
            ],
            2,
            100,
            ["a", "b"],
            id="oldest-succeeded-first",
        ),
        pytest.param(
            [finished("y", False, 2), finished("x", False, 1), finished("z", False, 3)],
            100,
            0,
            ["x", "y", "z"],
            id="failed-limit-0-deletes-all",
        ),
        pytest.param(
            [
                finished("f1", False, 1),
                finished("s1", True, 2),
                finished("f2", False, 3),
                finished("s2", True, 4),
            ],
            1,
            1,
            ["s1", "f1"],
            id="succeeded-then-failed",
        ),
        pytest.param(
            [finished("p", True, 5), finished("q", True, 5), finished("r", True, 6)],
            1,
            1,
            ["p", "q"],
            id="ties-keep-input-order",
        ),
        pytest.param(
            [finished(f"j{i}", True, i) for i in range(101)], 100, 100, ["j0"], id="default-100"
        ),
    ],
)
def test_finished_jobs_to_delete(
    jobs: list[FinishedJob], successful_limit: int, failed_limit: int, expected: list[str]
) -> None:
    scaling = ScalingSpec(
        successful_jobs_history_limit=successful_limit, failed_jobs_history_limit=failed_limit
    )
    assert finished_jobs_to_delete(jobs, scaling) == expected


def test_poll_deletes_history_even_when_inactive() -> None:
    scaling = ScalingSpec(successful_jobs_history_limit=0)
    result = poll(
        offsets((3, 3)),
        TRIGGER,
        scaling,
        running=0,
        pending=0,
        state=EMPTY,
        finished=[finished("old", True, 1)],
    )
    assert (result.jobs_to_create, result.jobs_to_delete) == (0, ("old",))


# --------------------------------------------------------------------------- whole polls


@pytest.mark.parametrize(
    ("ends", "expected_jobs"),
    [
        pytest.param((0, 0, 0), 0, id="no-messages"),
        pytest.param((1, 0, 0), 0, id="1-message-below-activation"),
        pytest.param((1, 1, 0), 2, id="2-messages"),
        pytest.param((3, 2, 2), 3, id="7-messages-capped-at-3-partitions"),
    ],
)
@pytest.mark.parametrize("policy", ["latest-committed", "earliest-uncommitted"])
def test_keda_kafka_e2e_cases(ends: tuple[int, int, int], expected_jobs: int, policy: str) -> None:
    """KEDA's Kafka e2e test (tests/scalers/kafka): 3 partitions, lagThreshold 1, activation 1.

    Its latest-policy case commits the group first; its earliest-policy case never commits.
    """
    if policy == "latest-committed":
        trigger, committed = E2E_TRIGGER, 0
    else:
        trigger, committed = replace(E2E_TRIGGER, offset_reset_policy="earliest"), -1
    partitions = offsets(*((committed, end) for end in ends))
    result = poll(partitions, trigger, ScalingSpec(), running=0, pending=0, state=EMPTY)
    assert result.jobs_to_create == expected_jobs


def test_uncommitted_group_under_latest_keeps_asking_for_p_jobs() -> None:
    """KEDA issue #2871's flip side: an empty topic with no commits counts 1 per partition."""
    partitions = offsets((-1, 0), (-1, 0), (-1, 0))
    first = poll(partitions, TRIGGER, ScalingSpec(), running=0, pending=0, state=EMPTY)
    assert (first.lag.lag, first.jobs_to_create) == (3, 1)  # lagThreshold 10: ceil(3 / 10)
    e2e = poll(partitions, E2E_TRIGGER, ScalingSpec(), running=0, pending=0, state=EMPTY)
    assert e2e.jobs_to_create == 3
    # Once those 3 jobs finish without committing, the next poll creates 3 again.
    again = poll(partitions, E2E_TRIGGER, ScalingSpec(), running=0, pending=0, state=e2e.state)
    assert again.jobs_to_create == 3


def test_taken_but_uncommitted_order_counts_as_lag_and_as_running_job() -> None:
    """Lag falls only on commit: one job on one order means no second job for it (default)."""
    partitions = offsets((0, 1))
    trigger = replace(TRIGGER, lag_threshold=1)
    first = poll(partitions, trigger, ScalingSpec(), running=0, pending=0, state=EMPTY)
    busy = poll(partitions, trigger, ScalingSpec(), running=1, pending=0, state=first.state)
    assert (first.jobs_to_create, busy.lag.lag, busy.jobs_to_create) == (1, 1, 0)


def test_persistent_lag_stops_scaling_on_the_second_poll() -> None:
    trigger = replace(
        TRIGGER, lag_threshold=1, exclude_persistent_lag=True, allow_idle_consumers=True
    )
    partitions = offsets((5, 12))
    first = poll(partitions, trigger, spec(), running=0, pending=0, state=EMPTY)
    assert (first.jobs_to_create, first.lag.active) == (7, True)
    second = poll(partitions, trigger, spec(), running=0, pending=0, state=first.state)
    # The trigger stays active (lag with persistent 7 > 0) but sizes on 0: nothing is created.
    assert (second.jobs_to_create, second.lag.lag, second.lag.active) == (0, 0, True)
    moved = poll(offsets((6, 12)), trigger, spec(), running=0, pending=0, state=second.state)
    assert moved.jobs_to_create == 6


@pytest.mark.parametrize(
    ("scaling", "most"),
    [
        pytest.param(spec(max_replica_count=40, min_replica_count=2), 40, id="default"),
        pytest.param(spec(max_replica_count=None, min_replica_count=2), 102, id="default-max"),
        pytest.param(
            spec("custom", max_replica_count=40, min_replica_count=2, deduction=2, percentage="1"),
            38,
            id="custom-deducting-the-floor",
        ),
        pytest.param(
            spec("custom", max_replica_count=40, min_replica_count=2, deduction=2),
            40,
            id="custom-without-percentage-is-default",
        ),
        pytest.param(
            spec("custom", max_replica_count=10, min_replica_count=2, deduction=20, percentage="1"),
            2,
            id="deduction-beyond-max-keeps-the-floor",
        ),
        pytest.param(
            spec("accurate", max_replica_count=40, min_replica_count=2, deduction=2),
            40,
            id="deduction-only-counts-for-custom",
        ),
    ],
)
def test_the_most_jobs_lag_keeps_running(scaling: ScalingSpec, most: int) -> None:
    assert scaling.most_jobs == most


@given(
    lag=st.integers(0, 2000),
    threshold=st.integers(1, 20),
    max_replica_count=st.none() | st.integers(1, 50),
    min_replica_count=st.integers(0, 10),
    strategy=st.sampled_from(["default", "accurate", "eager", "custom"]),
    deduction=st.none() | st.integers(0, 12),
    percentage=st.none() | st.sampled_from(["1", "1.5", "2"]),
)
def test_jobs_that_never_finish_settle_within_the_most_jobs(
    *,
    lag: int,
    threshold: int,
    max_replica_count: int | None,
    min_replica_count: int,
    strategy: Strategy,
    deduction: int | None,
    percentage: str | None,
) -> None:
    """Poll after poll on the same lag, with every Job running on (makers that stay)."""
    scaling = spec(
        strategy,
        max_replica_count=max_replica_count,
        min_replica_count=min_replica_count,
        deduction=deduction,
        percentage=percentage,
    )
    running = 0
    for _ in range(5):
        running += jobs_to_create(lag, True, running, 0, scaling, lag_threshold=threshold)
    assert running <= scaling.most_jobs


# --------------------------------------------------------------------------- properties

specs = st.builds(
    ScalingSpec,
    max_replica_count=st.none() | st.integers(1, 50),
    min_replica_count=st.integers(0, 10),
    scaling_strategy=st.builds(
        ScalingStrategy,
        strategy=st.sampled_from(["default", "accurate", "eager", "custom"]),
        custom_scaling_queue_length_deduction=st.none() | st.integers(-5, 5),
        custom_scaling_running_job_percentage=st.none()
        | st.sampled_from(["0", "0.25", "0.5", "1", "1.5", "-0.5", "x"]),
        multiple_scalers_calculation=st.sampled_from(["max", "min", "avg", "sum"]),
    ),
)


@given(
    lag=st.integers(-10, 500),
    active=st.booleans(),
    running=st.integers(0, 80),
    pending_share=st.floats(0, 1),
    scaling=specs,
    threshold=st.integers(1, 20),
)
def test_never_negative_and_bounded_by_max_replicas(
    *,
    lag: int,
    active: bool,
    running: int,
    pending_share: float,
    scaling: ScalingSpec,
    threshold: int,
) -> None:
    pending = int(running * pending_share)
    created = jobs_to_create(lag, active, running, pending, scaling, lag_threshold=threshold)
    assert created >= 0
    if running < scaling.min_rc:
        assert created == scaling.min_rc - running
    elif scaling.scaling_strategy.effective_strategy != "custom":
        # custom caps at maxRC itself, not maxRC minus running (pinned in test_custom_strategy)
        assert created <= max(0, scaling.max_rc - (running - scaling.min_rc))


@given(
    lags=st.lists(st.integers(0, 60), min_size=1, max_size=8),
    running=st.integers(0, 20),
    max_replica_count=st.integers(1, 30),
    threshold=st.integers(1, 5),
)
def test_default_with_partition_cap_bounds_jobs_in_flight(
    lags: list[int], running: int, max_replica_count: int, threshold: int
) -> None:
    partitions = offsets(*((100, 100 + lag) for lag in lags))
    trigger = replace(TRIGGER, lag_threshold=threshold)
    scaling = ScalingSpec(max_replica_count=max_replica_count)
    result = poll(partitions, trigger, scaling, running=running, pending=0, state=EMPTY)
    extra = 1 if threshold > 1 else 0  # the P + 1 case
    bound = min(len(lags) + extra, max_replica_count)
    assert running + result.jobs_to_create <= max(running, bound)
    assert result.lag.lag <= result.lag.uncapped_lag
