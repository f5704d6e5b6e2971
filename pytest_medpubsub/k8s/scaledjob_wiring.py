"""The wiring rules of the makers' ScaledJob (see wiring.py for all rules and their identifiers):
its trigger against the makers ([wiring.trigger], [wiring.group], [wiring.bootstrap]), KEDA's
thresholds against a maker's capacity ([wiring.capacity]), its floor against the makers that stay
warm ([wiring.warm]) and its replica counts against the orders topic's partitions
([wiring.partitions]).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from medpubsub.messages import MAX_TABS, MIN_TABS
from medpubsub.settings import KafkaSettings, MedicineSettings
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, dig, object_id
from pytest_medpubsub.keda.scaledjob import ScaledJobError, ScaledJobSpec, scaled_job_of
from pytest_medpubsub.keda.scaler import DEFAULT_MAX_REPLICA_COUNT

MIN_ORDER_PARTITIONS = 12


def scaled_job_findings(
    job: Manifest,
    maker_env: Mapping[str, str],
    bootstrap: str | None,
    addresses: set[str],
    topics: Mapping[str, Manifest],
) -> list[Finding]:
    """Every broken rule of the ScaledJob `job`, whose makers run with `maker_env`; `bootstrap`
    is the Kafka's bootstrap service (None: unknown, not checked), reachable at `addresses`."""
    owner = object_id(job)
    try:
        spec = scaled_job_of(job, source=owner)
    except ScaledJobError as error:
        return [Finding(owner, "wiring.trigger", str(error))]
    findings = []

    def broken(rule: str, message: str) -> None:
        findings.append(Finding(owner, rule, message))

    trigger = spec.trigger
    if bootstrap and not set(trigger.bootstrap_servers) <= addresses:
        broken(
            "wiring.bootstrap",
            f"trigger bootstrapServers is {','.join(trigger.bootstrap_servers)!r}, "
            f"expected {bootstrap}",
        )
    group = setting_as_read(maker_env, MedicineSettings, "group_id")
    if trigger.consumer_group != group:
        broken(
            "wiring.group",
            f"trigger consumerGroup is {trigger.consumer_group!r} but the makers' "
            f"MEDICINE_GROUP_ID is {group!r}: KEDA would measure a group nobody consumes in",
        )
    orders = setting_as_read(maker_env, KafkaSettings, "orders_topic")
    if trigger.topic != orders:
        broken(
            "wiring.trigger",
            f"trigger topic is {trigger.topic!r} but the makers consume {orders!r}"
            + (
                " (without a topic KEDA sums every topic of the group, #8114)"
                if not trigger.topic
                else ""
            ),
        )
    if trigger.offset_reset_policy != "earliest" and not trigger.scale_to_zero_on_invalid_offset:
        broken(
            "wiring.trigger",
            "offsetResetPolicy latest without scaleToZeroOnInvalidOffset counts lag 1 on every "
            "partition of a group with no commits: a job storm on an empty topic",
        )
    if trigger.allow_idle_consumers:
        broken("wiring.trigger", "allowIdleConsumers would create makers that get no partition")
    findings += _capacity(owner, spec, maker_env)
    findings += _warm(owner, spec, maker_env)
    scaling = spec.scaling
    max_replicas = scaling.max_replica_count or DEFAULT_MAX_REPLICA_COUNT
    partitions = dig(topics.get(trigger.topic, {}), "spec", "partitions")
    if max_replicas <= scaling.min_replica_count:
        broken(
            "wiring.partitions",
            f"maxReplicaCount {max_replicas} leaves no room above minReplicaCount "
            f"{scaling.min_replica_count}: KEDA could never scale out",
        )
    strategy = scaling.scaling_strategy
    if strategy.effective_strategy == "custom" and (
        (strategy.custom_scaling_queue_length_deduction or 0) < 0
        or (strategy.running_job_percentage or 0.0) < 1.0
    ):
        broken(
            "wiring.partitions",
            "the custom strategy with a negative customScalingQueueLengthDeduction or a "
            "customScalingRunningJobPercentage below 1 settles above maxReplicaCount (KEDA caps "
            "each poll at maxReplicaCount, not at maxReplicaCount minus the running Jobs)",
        )
    if isinstance(partitions, int):
        if max_replicas > partitions:
            broken(
                "wiring.partitions",
                f"maxReplicaCount {max_replicas} exceeds the {partitions} partitions of "
                f"{trigger.topic}: a maker beyond them would own no partition",
            )
        if partitions < MIN_ORDER_PARTITIONS:
            broken(
                "wiring.partitions",
                f"{trigger.topic} has {partitions} partitions, fewer than {MIN_ORDER_PARTITIONS}",
            )
    elif trigger.topic in topics:
        broken("wiring.partitions", f"KafkaTopic {trigger.topic} has no spec.partitions")
    else:
        broken("wiring.topics", f"trigger topic {trigger.topic!r} is not a KafkaTopic")
    return findings


def setting_as_read(env: Mapping[str, str], settings: type[BaseSettings], field: str) -> str:
    """A setting as the maker reads it: its variable's literal value, else the default."""
    variable = f"{settings.model_config.get('env_prefix', '')}{field}".upper()
    return env.get(variable, str(settings.model_fields[field].default))


# Orders are 1-30 tabs at random: 15.5 on average. A maker is sized for its mean load to use
# 80 % of its workers, so that the orders of a busier moment (a maker's share of the partitions
# varies, and so do the sizes) still find free workers instead of waiting in the maker.
MEAN_TABS = (MIN_TABS + MAX_TABS) / 2
HEADROOM = 1.25


def orders_per_maker(max_workers: int) -> int:
    """The orders one maker with `max_workers` tab threads is sized for (at least one)."""
    return max(1, int(max_workers // (MEAN_TABS * HEADROOM)))


def _maker_settings(
    maker_env: Mapping[str, str], fields: tuple[str, ...]
) -> MedicineSettings | None:
    """The makers' settings as they read `fields` from their literal environment (the defaults
    for the others); None when a value is invalid."""
    try:
        return MedicineSettings.model_validate(
            {
                field: maker_env[variable]
                for field in fields
                if (variable := f"MEDICINE_{field.upper()}") in maker_env
            }
        )
    except ValidationError:
        return None


def _capacity(owner: str, spec: ScaledJobSpec, maker_env: Mapping[str, str]) -> list[Finding]:
    """[wiring.capacity] KEDA's thresholds are the makers' capacity, and a warm maker is there."""
    findings = []
    settings = _maker_settings(maker_env, ("max_workers", "max_orders_in_flight"))
    if settings is None:
        return []  # wiring.settings reports it

    def capacity(message: str) -> None:
        findings.append(Finding(owner, "wiring.capacity", message))

    threshold = spec.trigger.lag_threshold
    holds = orders_per_maker(settings.max_workers)
    if 0 < settings.max_orders_in_flight < holds:
        holds = settings.max_orders_in_flight
    if threshold != holds:
        capacity(
            f"lagThreshold {threshold:g} is not what a maker holds: {holds} orders"
            f" (MEDICINE_MAX_WORKERS {settings.max_workers} over {MEAN_TABS:g} tabs x"
            f" {HEADROOM:g} headroom, MEDICINE_MAX_ORDERS_IN_FLIGHT"
            f" {settings.max_orders_in_flight or 'unset'}); "
            + (
                "KEDA would add makers that the load does not need"
                if threshold < holds
                else "KEDA would size a maker for more than it holds"
            )
        )
    floor = spec.scaling.min_replica_count
    if floor < 1:
        capacity(
            "minReplicaCount 0 keeps no warm maker: the first order of a burst waits for a "
            "maker to start and join the group"
        )
    elif spec.trigger.activation_lag_threshold != floor * threshold:
        capacity(
            f"activationLagThreshold {spec.trigger.activation_lag_threshold:g} is not what the"
            f" {floor} warm maker(s) hold ({floor} x lagThreshold = {floor * threshold:g}"
            " orders): KEDA would "
            + (
                "add makers while the warm ones have room (and each that joins moves"
                " partitions with orders in flight)"
                if spec.trigger.activation_lag_threshold < floor * threshold
                else "wait while the warm makers are full"
            )
        )
    findings += _floor_counted_once(owner, spec)
    return findings


def _warm(owner: str, spec: ScaledJobSpec, maker_env: Mapping[str, str]) -> list[Finding]:
    """[wiring.warm] The makers keep the floor warm at rest: `MEDICINE_WARM_MAKERS` is
    `minReplicaCount`, and a warm maker leaves (to be replaced) before `activeDeadlineSeconds`.

    KEDA replaces a Job below the floor at its next poll, so a warm maker that leaves at its idle
    timeout comes back at once, and both moves of its partitions cost registrations for nothing
    (system/medicine/warm.py). More warm makers than the floor would keep makers KEDA does not
    count; a warm maker still there at the deadline is killed, its Job failed.
    """
    settings = _maker_settings(maker_env, ("warm_makers", "warm_seconds", "idle_timeout_seconds"))
    if settings is None:
        return []  # wiring.settings reports it
    findings = []
    floor = spec.scaling.min_replica_count
    if settings.warm_makers != floor:
        findings.append(
            Finding(
                owner,
                "wiring.warm",
                f"MEDICINE_WARM_MAKERS {settings.warm_makers} is not minReplicaCount {floor}: "
                + (
                    "the warm makers leave at rest and KEDA starts them again at once, moving "
                    "their partitions twice every idle timeout"
                    if settings.warm_makers < floor
                    else "idle makers above KEDA's floor stay, and KEDA does not count them"
                ),
            )
        )
    deadline = spec.active_deadline_seconds
    stays_s = settings.warm_seconds + settings.idle_timeout_seconds
    if settings.warm_makers and deadline is not None and stays_s >= deadline:
        findings.append(
            Finding(
                owner,
                "wiring.warm",
                f"a warm maker stays up to MEDICINE_WARM_SECONDS + MEDICINE_IDLE_TIMEOUT_SECONDS"
                f" ({stays_s:g} s) at rest, not less than activeDeadlineSeconds {deadline}: the"
                " deadline kills it and fails its Job instead of a fresh Job taking its place",
            )
        )
    return findings


def _floor_counted_once(owner: str, spec: ScaledJobSpec) -> list[Finding]:
    """[wiring.capacity] The warm makers' orders are counted once: KEDA runs ceil(lag /
    lagThreshold) makers in all, the floor among them, not that many on top of the floor.

    Every strategy sizes the Jobs above `minReplicaCount` on the whole lag, which counts the
    orders the warm makers hold too; only `custom` can take the floor's share off
    (`customScalingQueueLengthDeduction` = `minReplicaCount`, each running Job above the floor
    counted whole). Otherwise a load the warm makers serve at capacity still gets as many makers
    again, and each one that joins moves partitions with orders in flight (issue 17).
    """
    floor = spec.scaling.min_replica_count
    if floor < 1:
        return []  # no warm maker to count twice (the cold start is its own finding)
    strategy = spec.scaling.scaling_strategy
    if (
        strategy.effective_strategy == "custom"
        and strategy.custom_scaling_queue_length_deduction == floor
        and strategy.running_job_percentage == 1.0
    ):
        return []
    return [
        Finding(
            owner,
            "wiring.capacity",
            f"scalingStrategy {strategy.effective_strategy} counts the orders of the {floor}"
            f" warm maker(s) twice: KEDA would run ceil(lag / lagThreshold) makers on top of"
            f" them; use strategy custom with customScalingQueueLengthDeduction {floor}"
            ' (minReplicaCount) and customScalingRunningJobPercentage "1"',
        )
    ]
