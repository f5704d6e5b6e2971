"""KEDA 2.20.2's ScaledJob arithmetic with a `kafka` trigger, as pure functions.

The local platform must create medicine-maker jobs exactly when and as many as KEDA would on a
cluster, so that a scenario means the same thing in both worlds. Everything here is a transcription
of KEDA's code at tag v2.20.2 (not of its docs, which differ in places):

- `pkg/scalers/kafka_scaler.go` — lag per partition, the partition cap, activation (how the
  trigger's metadata strings are parsed is in trigger.py);
- `pkg/scaling/scaledjob/metrics.go` — queue length, max scale, ScaledJob activity;
- `pkg/scaling/executor/scale_jobs.go` — the scaling strategies, job creation, history clean-up;
- `apis/keda/v1alpha1/scaledjob_types.go` — defaults of the replica counts.

No I/O here: the caller reads offsets and counts jobs, then calls `poll` once per polling interval
(KEDA polls once at start, then every `pollingInterval` seconds) and carries `ScalerState` along.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from pytest_medpubsub.keda.trigger import KafkaTriggerMetadata, ScaledJobError, parse_go_float

Strategy = Literal["default", "custom", "accurate", "eager"]
MultipleScalersCalculation = Literal["max", "min", "avg", "sum"]
TopicPartition = tuple[str, int]

INVALID_OFFSET = -1
"""What Kafka reports as the committed offset of a partition the group never committed."""
DEFAULT_MAX_REPLICA_COUNT = 100
DEFAULT_POLLING_INTERVAL = 30
DEFAULT_JOBS_HISTORY_LIMIT = 100

# --------------------------------------------------------------------------- lag


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition as the scaler sees it: the group's committed offset and the log-end offset."""

    topic: str
    partition: int
    committed: int  # INVALID_OFFSET (-1) when the group never committed this partition
    end: int


@dataclass(frozen=True)
class ScalerState:
    """What KEDA's Kafka scaler remembers between polls (`kafkaScaler.previousOffsets`).

    Only `excludePersistentLag` uses it. KEDA keeps it in the scaler object, so it starts empty
    whenever KEDA rebuilds the scaler (new ScaledJob generation, scaler error); so should a caller.
    """

    previous_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionLag:
    """`lag` sizes the scale-out; `lag_with_persistent` decides activation (they differ only
    for a partition whose committed offset is stuck under `excludePersistentLag`)."""

    lag: int
    lag_with_persistent: int


def partition_lag(
    offsets: PartitionOffsets, trigger: KafkaTriggerMetadata, state: ScalerState
) -> PartitionLag:
    """The lag KEDA counts for one partition (`getLagForPartition`)."""
    if offsets.committed == INVALID_OFFSET:
        if trigger.scale_to_zero_on_invalid_offset:
            return PartitionLag(0, 0)
        # latest: 1, not the backlog — the group would start at the end of the log anyway.
        # earliest: the log-end offset, even where retention already deleted the log's start.
        lag = 1 if trigger.offset_reset_policy == "latest" else offsets.end
        return PartitionLag(lag, lag)
    lag = offsets.end - offsets.committed
    previous = state.previous_offsets.get((offsets.topic, offsets.partition))
    if trigger.exclude_persistent_lag and previous == offsets.committed:
        # The group did not move since the previous poll: maybe a poison message. Don't size
        # on it, but let it keep the trigger active.
        return PartitionLag(0, lag)
    return PartitionLag(lag, lag)


def next_state(
    partitions: Sequence[PartitionOffsets], trigger: KafkaTriggerMetadata, state: ScalerState
) -> ScalerState:
    """The state after a poll: KEDA remembers each valid committed offset it saw, only under
    `excludePersistentLag`, and never forgets a partition."""
    if not trigger.exclude_persistent_lag:
        return state
    remembered = dict(state.previous_offsets)
    for p in partitions:
        if p.committed != INVALID_OFFSET:
            remembered[(p.topic, p.partition)] = p.committed
    return ScalerState(remembered)


def cap_lag(
    total: int, partitions: int, partitions_with_lag: int, trigger: KafkaTriggerMetadata
) -> int:
    """KEDA's partition cap: at most one job's worth of lag per partition (`getTotalLag`).

    The cap only applies once `total // lagThreshold` *exceeds* the partition count, so a total
    just below `(P + 1) * lagThreshold` still asks for P + 1 jobs when lagThreshold > 1.
    """
    if trigger.allow_idle_consumers and not trigger.limit_to_partitions_with_lag:
        return total
    upper = partitions_with_lag if trigger.limit_to_partitions_with_lag else partitions
    # Go divides toward zero, Python floors; they differ only for a negative total, which is
    # never above a (non-negative) partition count either way.
    if total // trigger.lag_threshold > upper:
        return upper * trigger.lag_threshold
    return total


def is_active(lag_with_persistent: int, trigger: KafkaTriggerMetadata) -> bool:
    """The trigger's activity: the uncapped lag, persistent lag included, above the activation."""
    return lag_with_persistent > trigger.activation_lag_threshold


@dataclass(frozen=True)
class LagReading:
    """One poll of the Kafka scaler: the metric KEDA reports and whether the trigger is active."""

    lag: int  # the metric: sizing lag after the partition cap
    uncapped_lag: int  # sizing lag before the cap
    lag_with_persistent: int  # what activation compares (never capped)
    partitions: int
    partitions_with_lag: int  # partitions whose sizing lag is > 0
    active: bool


def read_lag(
    partitions: Sequence[PartitionOffsets], trigger: KafkaTriggerMetadata, state: ScalerState
) -> tuple[LagReading, ScalerState]:
    """Total lag, the cap and activation for one poll, plus the state for the next poll."""
    lags = [partition_lag(p, trigger, state) for p in partitions]
    total = sum(pl.lag for pl in lags)
    with_lag = sum(1 for pl in lags if pl.lag > 0)
    with_persistent = sum(pl.lag_with_persistent for pl in lags)
    reading = LagReading(
        lag=cap_lag(total, len(partitions), with_lag, trigger),
        uncapped_lag=total,
        lag_with_persistent=with_persistent,
        partitions=len(partitions),
        partitions_with_lag=with_lag,
        active=is_active(with_persistent, trigger),
    )
    return reading, next_state(partitions, trigger, state)


# --------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class ScalingStrategy:
    """`spec.scalingStrategy` of a ScaledJob.

    `custom_scaling_running_job_percentage` stays a string, as in the CRD: KEDA parses it when
    it scales, and uses the default strategy when that fails.
    """

    strategy: Strategy = "default"
    custom_scaling_queue_length_deduction: int | None = None
    custom_scaling_running_job_percentage: str | None = None
    multiple_scalers_calculation: MultipleScalersCalculation = "max"
    pending_pod_conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in get_args(Strategy):
            raise ScaledJobError(
                "spec.scalingStrategy.strategy must be one of default, custom, accurate, eager, "
                f"got {self.strategy!r}."
            )
        if self.multiple_scalers_calculation not in get_args(MultipleScalersCalculation):
            raise ScaledJobError(
                "spec.scalingStrategy.multipleScalersCalculation must be one of max, min, avg, "
                f"sum, got {self.multiple_scalers_calculation!r}."
            )
        percentage = self.running_job_percentage
        if percentage is not None and not math.isfinite(percentage):
            raise ScaledJobError(
                "spec.scalingStrategy.customScalingRunningJobPercentage must be a finite number "
                f"(KEDA's result is undefined otherwise), got "
                f"{self.custom_scaling_running_job_percentage!r}."
            )

    @property
    def running_job_percentage(self) -> float | None:
        """The parsed percentage, or None when unset or not a number Go's ParseFloat accepts."""
        raw = self.custom_scaling_running_job_percentage
        return None if raw is None else parse_go_float(raw)

    @property
    def effective_strategy(self) -> Strategy:
        """The strategy KEDA really applies: `custom` without a usable percentage is `default`."""
        if self.strategy == "custom" and self.running_job_percentage is None:
            return "default"
        return self.strategy


@dataclass(frozen=True)
class ScalingSpec:
    """The ScaledJob fields that decide how many jobs exist (CRD minimums enforced).

    `max_replica_count` is None when the manifest leaves it out: KEDA's default of 100 is then
    *not* reduced by `minReplicaCount` (see `max_rc`).
    """

    max_replica_count: int | None = None
    min_replica_count: int = 0
    polling_interval: int = DEFAULT_POLLING_INTERVAL
    successful_jobs_history_limit: int = DEFAULT_JOBS_HISTORY_LIMIT
    failed_jobs_history_limit: int = DEFAULT_JOBS_HISTORY_LIMIT
    scaling_strategy: ScalingStrategy = field(default_factory=ScalingStrategy)

    def __post_init__(self) -> None:
        _at_least("maxReplicaCount", self.max_replica_count, 1)
        _at_least("minReplicaCount", self.min_replica_count, 0)
        _at_least("pollingInterval", self.polling_interval, 1)
        _at_least("successfulJobsHistoryLimit", self.successful_jobs_history_limit, 0)
        _at_least("failedJobsHistoryLimit", self.failed_jobs_history_limit, 0)

    @property
    def max_rc(self) -> int:
        """KEDA's `ScaledJob.MaxReplicaCount()`: the jobs allowed above the minimum."""
        if self.max_replica_count is None:
            return DEFAULT_MAX_REPLICA_COUNT  # not 100 - min
        if self.min_replica_count > self.max_replica_count:
            return self.max_replica_count  # not max - min (negative)
        return self.max_replica_count - self.min_replica_count

    @property
    def most_jobs(self) -> int:
        """The most Jobs that lag alone keeps running: `minReplicaCount` + `max_rc`, less what a
        `custom` strategy deducts from every poll's count (never below the floor).

        A negative deduction or a running-job percentage below 1 lets Jobs pile up past this
        over polls; the wiring rules reject both.
        """
        strategy = self.scaling_strategy
        deduction = strategy.custom_scaling_queue_length_deduction or 0
        if strategy.effective_strategy != "custom" or deduction < 0:
            deduction = 0
        return max(self.min_rc, self.min_rc + self.max_rc - deduction)

    @property
    def min_rc(self) -> int:
        """KEDA's `ScaledJob.MinReplicaCount()`: the minimum, never above an explicit maximum."""
        if self.max_replica_count is not None:
            return min(self.min_replica_count, self.max_replica_count)
        return self.min_replica_count


def _at_least(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise ScaledJobError(f"{name} must be at least {minimum}, got {value}.")


def queue_length_and_activity(lag: int, active: bool, spec: ScalingSpec) -> tuple[int, bool]:
    """The queue length KEDA sizes on and whether the ScaledJob is active (`IsScaledJobActive`).

    With the default `multipleScalersCalculation` (max) an active trigger only counts when its
    queue length is above 0, so a trigger kept active by persistent lag alone creates nothing.
    An inactive trigger contributes a queue length of 0. Any `minReplicaCount` > 0 makes the
    ScaledJob active whatever the trigger says.
    """
    queue = max(lag, 0)  # KEDA reports a negative metric as 0
    taken = active and (queue > 0 or spec.scaling_strategy.multiple_scalers_calculation != "max")
    return (queue if taken else 0), (taken or spec.min_rc > 0)


def max_scale(queue_length: int, lag_threshold: int, spec: ScalingSpec) -> int:
    """`ceil(min(queueLength / lagThreshold, maxRC))`, in floating point as KEDA does."""
    return math.ceil(min(queue_length / lag_threshold, float(spec.max_rc)))


def effective_max_scale(
    max_scale: int, scale_to: int, running: int, pending: int, spec: ScalingSpec
) -> tuple[int, int]:
    """KEDA's `getScalingDecision`: (effective max scale, scale to) before clamping.

    Below the minimum, KEDA only tops up to it, whatever the lag. Above it, the strategies see
    the running jobs beyond the minimum but *all* pending jobs.
    """
    if running < spec.min_rc:
        return spec.min_rc - running, spec.min_rc - running
    above_min = running - spec.min_rc
    max_rc = spec.max_rc
    strategy = spec.scaling_strategy
    match strategy.effective_strategy:
        case "custom":
            deduction = strategy.custom_scaling_queue_length_deduction or 0
            percentage = strategy.running_job_percentage or 0.0
            # int64(float64(running) * percentage): truncation toward zero, as int() does.
            return min(max_scale - deduction - int(above_min * percentage), max_rc), scale_to
        case "accurate":
            if max_scale + above_min - pending > max_rc:
                return max_rc - above_min, scale_to
            return max_scale - pending, scale_to
        case "eager":
            return min(max_rc - above_min - pending, max_scale), max_rc
        case "default":
            return max_scale - above_min, scale_to


def jobs_to_create(
    total_lag: int,
    active: bool,
    running: int,
    pending: int,
    spec: ScalingSpec,
    *,
    lag_threshold: int,
) -> int:
    """How many Jobs KEDA creates at this poll (`RequestJobScale`).

    `total_lag` is the trigger's metric (capped lag), `active` the trigger's activity; `running`
    counts unfinished Jobs (pending ones included), `pending` those with no pod Running or
    Succeeded. KEDA never deletes an unfinished Job because the lag fell.
    """
    queue, scaled_job_active = queue_length_and_activity(total_lag, active, spec)
    effective, scale_to = effective_max_scale(
        max_scale(queue, lag_threshold, spec), queue, running, pending, spec
    )
    if not scaled_job_active:
        return 0
    return min(scale_to, max(effective, 0))


@dataclass(frozen=True)
class FinishedJob:
    """A Job that completed or failed, as the history clean-up sees it."""

    name: str
    succeeded: bool
    finished_at: float


def finished_jobs_to_delete(finished: Sequence[FinishedJob], spec: ScalingSpec) -> list[str]:
    """Names of the finished Jobs KEDA deletes at this poll: the oldest beyond each history limit.

    KEDA sorts by `status.completionTime`, which Kubernetes sets only for succeeded Jobs, so its
    order among failed Jobs is unspecified; here both kinds are ordered by `finished_at` (ties keep
    their input order). Succeeded ones are listed first, as KEDA deletes them first.
    """
    doomed: list[str] = []
    for succeeded, limit in (
        (True, spec.successful_jobs_history_limit),
        (False, spec.failed_jobs_history_limit),
    ):
        jobs = sorted(
            (j for j in finished if j.succeeded is succeeded), key=lambda j: j.finished_at
        )
        doomed.extend(j.name for j in jobs[: max(len(jobs) - limit, 0)])
    return doomed


# --------------------------------------------------------------------------- one poll


@dataclass(frozen=True)
class PollResult:
    """What a controller does after one poll, and the state to pass to the next one."""

    jobs_to_create: int
    jobs_to_delete: tuple[str, ...]
    lag: LagReading
    state: ScalerState


def poll(
    partitions: Sequence[PartitionOffsets],
    trigger: KafkaTriggerMetadata,
    spec: ScalingSpec,
    *,
    running: int,
    pending: int,
    state: ScalerState,
    finished: Sequence[FinishedJob] = (),
) -> PollResult:
    """One KEDA polling cycle of a ScaledJob with a single Kafka trigger.

    `partitions` are the trigger topic's partitions (every partition of every topic the group
    committed when the trigger has no topic); `finished` are this ScaledJob's finished Jobs.
    """
    reading, new_state = read_lag(partitions, trigger, state)
    create = jobs_to_create(
        reading.lag, reading.active, running, pending, spec, lag_threshold=trigger.lag_threshold
    )
    return PollResult(
        jobs_to_create=create,
        jobs_to_delete=tuple(finished_jobs_to_delete(finished, spec)),
        lag=reading,
        state=new_state,
    )
