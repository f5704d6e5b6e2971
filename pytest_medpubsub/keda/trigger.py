"""The `kafka` trigger's metadata as KEDA 2.20.2 parses it (`pkg/scalers/kafka_scaler.go` and
`pkg/scalers/scalersconfig/typed_config.go` at tag v2.20.2): which strings it accepts, what they
default to, and the one-sentence error for each it refuses (`ScaledJobError`).

Split from scaler.py, which does the arithmetic on what this parses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

OffsetResetPolicy = Literal["latest", "earliest"]

DEFAULT_LAG_THRESHOLD = 10

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# KEDA parses integer metadata with encoding/json into an int64: no sign "+", no leading zeros,
# no fraction or exponent.
_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
# strconv.ParseBool.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# strconv.ParseFloat's decimal and special forms (hexadecimal floats are not recognised here).
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_FLOAT_SPECIAL = re.compile(r"[+-]?inf(?:inity)?|nan", re.IGNORECASE)


class ScaledJobError(ValueError):
    """A ScaledJob or its Kafka trigger is invalid; the message is one sentence saying why."""


@dataclass(frozen=True)
class KafkaTriggerMetadata:
    """The `kafka` trigger's settings that change how many jobs KEDA creates.

    `topic` may be empty (KEDA then sums the lag of every topic the group ever committed, issue
    #8114), which is why partitions are identified by topic and number throughout.
    """

    bootstrap_servers: tuple[str, ...]
    consumer_group: str
    topic: str
    lag_threshold: int = DEFAULT_LAG_THRESHOLD
    activation_lag_threshold: int = 0
    offset_reset_policy: OffsetResetPolicy = "latest"
    allow_idle_consumers: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    exclude_persistent_lag: bool = False
    limit_to_partitions_with_lag: bool = False

    def __post_init__(self) -> None:
        """KEDA's `kafkaMetadata.Validate`: a hand-built trigger is as valid as a parsed one."""
        if self.lag_threshold <= 0:
            raise ScaledJobError(
                f"Kafka trigger lagThreshold must be a positive number, got {self.lag_threshold}."
            )
        if self.activation_lag_threshold < 0:
            raise ScaledJobError(
                "Kafka trigger activationLagThreshold must be a non-negative number, "
                f"got {self.activation_lag_threshold}."
            )
        if self.offset_reset_policy not in get_args(OffsetResetPolicy):
            raise ScaledJobError(
                "Kafka trigger offsetResetPolicy must be latest or earliest, "
                f"got {self.offset_reset_policy!r}."
            )
        if self.allow_idle_consumers and self.limit_to_partitions_with_lag:
            raise ScaledJobError(
                "Kafka trigger allowIdleConsumers and limitToPartitionsWithLag cannot both be true."
            )
        if self.limit_to_partitions_with_lag and not self.topic:
            raise ScaledJobError("Kafka trigger limitToPartitionsWithLag needs a topic.")

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, str], resolved_env: Mapping[str, str] | None = None
    ) -> KafkaTriggerMetadata:
        """Parse a trigger's `metadata` strings the way KEDA's typed config does.

        Values are trimmed and a blank value counts as absent (so the default applies).
        `bootstrapServers`, `consumerGroup` and `topic` may instead name a container environment
        variable with `<name>FromEnv`; `resolved_env` holds the values KEDA would resolve.
        """
        env = resolved_env or {}
        if _bool(metadata, "ensureEvenDistributionOfPartitions"):
            raise ScaledJobError(
                "Kafka trigger ensureEvenDistributionOfPartitions is not modelled by the local "
                "platform; remove it or set it to false."
            )
        # KEDA ignores partitionLimitation when there is no topic.
        if _value(metadata, "partitionLimitation") and _value(metadata, "topic", env):
            raise ScaledJobError(
                "Kafka trigger partitionLimitation is not modelled by the local platform; "
                "remove it."
            )
        servers = _value(metadata, "bootstrapServers", env)
        group = _value(metadata, "consumerGroup", env)
        if servers is None:
            raise ScaledJobError("Kafka trigger metadata misses the required bootstrapServers.")
        if group is None:
            raise ScaledJobError("Kafka trigger metadata misses the required consumerGroup.")
        policy = _value(metadata, "offsetResetPolicy") or "latest"
        if policy not in get_args(OffsetResetPolicy):
            raise ScaledJobError(
                f"Kafka trigger offsetResetPolicy must be latest or earliest, got {policy!r}."
            )
        return cls(
            # A []string field: split on "," and trim each element (empty elements are kept).
            bootstrap_servers=tuple(s.strip() for s in servers.split(",")),
            consumer_group=group,
            topic=_value(metadata, "topic", env) or "",
            lag_threshold=_int(metadata, "lagThreshold", DEFAULT_LAG_THRESHOLD),
            activation_lag_threshold=_int(metadata, "activationLagThreshold", 0),
            offset_reset_policy="earliest" if policy == "earliest" else "latest",
            allow_idle_consumers=_bool(metadata, "allowIdleConsumers"),
            scale_to_zero_on_invalid_offset=_bool(metadata, "scaleToZeroOnInvalidOffset"),
            exclude_persistent_lag=_bool(metadata, "excludePersistentLag"),
            limit_to_partitions_with_lag=_bool(metadata, "limitToPartitionsWithLag"),
        )


def _value(
    metadata: Mapping[str, str], name: str, resolved_env: Mapping[str, str] | None = None
) -> str | None:
    """A trimmed, non-blank metadata value, else the `<name>FromEnv` one if allowed, else None."""
    value = metadata.get(name, "").strip()
    if value:
        return value
    if resolved_env is not None:
        from_env = resolved_env.get(metadata.get(f"{name}FromEnv", ""), "").strip()
        if from_env:
            return from_env
    return None


def _int(metadata: Mapping[str, str], name: str, default: int) -> int:
    raw = _value(metadata, name)
    if raw is None:
        return default
    if not _JSON_INT.fullmatch(raw) or not _INT64_MIN <= int(raw) <= _INT64_MAX:
        raise ScaledJobError(f"Kafka trigger {name} must be a whole number, got {raw!r}.")
    return int(raw)


def _bool(metadata: Mapping[str, str], name: str) -> bool:
    raw = _value(metadata, name)
    if raw is None:
        return False
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise ScaledJobError(f'Kafka trigger {name} must be "true" or "false", got {raw!r}.')


def parse_go_float(text: str) -> float | None:
    """Go's `strconv.ParseFloat(text, 64)` for decimal input; None where Go returns an error.

    KEDA keeps `customScalingRunningJobPercentage` as a string and parses it on every poll; when
    that fails (also when it is unset) the custom strategy silently becomes the default one.
    """
    if not _GO_FLOAT.fullmatch(text) and not _GO_FLOAT_SPECIAL.fullmatch(text):
        return None
    value = float(text)
    if math.isinf(value) and not _GO_FLOAT_SPECIAL.fullmatch(text):
        return None  # out of range: Go returns ±Inf *and* ErrRange
    return value
