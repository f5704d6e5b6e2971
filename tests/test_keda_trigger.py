"""Pin how KEDA 2.20.2 parses a `kafka` trigger's metadata (`pytest_medpubsub/keda/trigger.py`):
what each string accepts, its default, and the one sentence for what it refuses."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from pytest_medpubsub.keda.trigger import KafkaTriggerMetadata, ScaledJobError, parse_go_float

TOPIC = "tabs.orders"
TRIGGER = KafkaTriggerMetadata(
    bootstrap_servers=("kafka:9092",), consumer_group="medicine", topic=TOPIC
)


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message
    assert message.endswith(".")


# --------------------------------------------------------------------------- trigger metadata

BASE_METADATA = {"bootstrapServers": "kafka:9092", "consumerGroup": "medicine", "topic": TOPIC}


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        pytest.param({}, {}, TRIGGER, id="defaults"),
        pytest.param(
            {
                "lagThreshold": "5",
                "activationLagThreshold": "2",
                "offsetResetPolicy": "earliest",
                "allowIdleConsumers": "true",
                "scaleToZeroOnInvalidOffset": "true",
                "excludePersistentLag": "true",
            },
            {},
            replace(
                TRIGGER,
                lag_threshold=5,
                activation_lag_threshold=2,
                offset_reset_policy="earliest",
                allow_idle_consumers=True,
                scale_to_zero_on_invalid_offset=True,
                exclude_persistent_lag=True,
            ),
            id="every-setting",
        ),
        pytest.param(
            {"limitToPartitionsWithLag": "True", "excludePersistentLag": "1"},
            {},
            replace(TRIGGER, limit_to_partitions_with_lag=True, exclude_persistent_lag=True),
            id="go-parsebool-true-forms",
        ),
        pytest.param(
            {"allowIdleConsumers": "F", "scaleToZeroOnInvalidOffset": "0"},
            {},
            TRIGGER,
            id="go-parsebool-false-forms",
        ),
        pytest.param(
            {"lagThreshold": "  ", "offsetResetPolicy": "", "allowIdleConsumers": " "},
            {},
            TRIGGER,
            id="blank-values-take-the-default",
        ),
        pytest.param({"lagThreshold": " 7 "}, {}, replace(TRIGGER, lag_threshold=7), id="trimmed"),
        pytest.param(
            {"bootstrapServers": "a:9092, b:9092 ,c:9092"},
            {},
            replace(TRIGGER, bootstrap_servers=("a:9092", "b:9092", "c:9092")),
            id="servers-split-on-commas",
        ),
        pytest.param(
            {"bootstrapServers": "", "bootstrapServersFromEnv": "KAFKA"},
            {"KAFKA": "env-kafka:9092"},
            replace(TRIGGER, bootstrap_servers=("env-kafka:9092",)),
            id="from-env",
        ),
        pytest.param(
            {"bootstrapServersFromEnv": "KAFKA"},
            {"KAFKA": "env-kafka:9092"},
            TRIGGER,
            id="metadata-beats-from-env",
        ),
        pytest.param(
            {"topic": "", "partitionLimitation": "0,1"},
            {},
            replace(TRIGGER, topic=""),
            id="partition-limitation-ignored-without-topic",
        ),
        pytest.param(
            {"ensureEvenDistributionOfPartitions": "false"}, {}, TRIGGER, id="even-off-is-fine"
        ),
    ],
)
def test_from_metadata(
    extra: dict[str, str], env: dict[str, str], expected: KafkaTriggerMetadata
) -> None:
    assert KafkaTriggerMetadata.from_metadata({**BASE_METADATA, **extra}, env) == expected


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        pytest.param({"bootstrapServers": ""}, "bootstrapServers", id="no-servers"),
        pytest.param({"consumerGroup": " "}, "consumerGroup", id="no-group"),
        pytest.param({"lagThreshold": "0"}, "positive", id="threshold-zero"),
        pytest.param({"lagThreshold": "-3"}, "positive", id="threshold-negative"),
        pytest.param({"lagThreshold": "-0"}, "positive", id="threshold-json-minus-zero"),
        pytest.param({"lagThreshold": "1.5"}, "whole number", id="threshold-fraction"),
        pytest.param({"lagThreshold": "1e1"}, "whole number", id="threshold-exponent"),
        pytest.param({"lagThreshold": "+5"}, "whole number", id="threshold-plus-sign"),
        pytest.param({"lagThreshold": "010"}, "whole number", id="threshold-leading-zero"),
        pytest.param({"lagThreshold": "ten"}, "whole number", id="threshold-word"),
        pytest.param({"lagThreshold": str(2**63)}, "whole number", id="threshold-beyond-int64"),
        pytest.param({"activationLagThreshold": "-1"}, "non-negative", id="activation-negative"),
        pytest.param({"allowIdleConsumers": "yes"}, "allowIdleConsumers", id="bool-yes"),
        pytest.param({"excludePersistentLag": "on"}, "excludePersistentLag", id="bool-on"),
        pytest.param({"offsetResetPolicy": "none"}, "latest or earliest", id="policy-none"),
        pytest.param({"offsetResetPolicy": "Latest"}, "latest or earliest", id="policy-case"),
        pytest.param(
            {"allowIdleConsumers": "true", "limitToPartitionsWithLag": "true"},
            "cannot both",
            id="idle-and-limit",
        ),
        pytest.param(
            {"topic": "", "limitToPartitionsWithLag": "true"}, "needs a topic", id="limit-no-topic"
        ),
        pytest.param(
            {"ensureEvenDistributionOfPartitions": "true"}, "not modelled", id="even-distribution"
        ),
        pytest.param({"partitionLimitation": "0-2"}, "not modelled", id="partition-limitation"),
    ],
)
def test_from_metadata_rejects(extra: dict[str, str], fragment: str) -> None:
    with pytest.raises(ScaledJobError, match=fragment) as caught:
        KafkaTriggerMetadata.from_metadata({**BASE_METADATA, **extra})
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"lag_threshold": 0}, "positive", id="threshold"),
        pytest.param({"activation_lag_threshold": -1}, "non-negative", id="activation"),
        pytest.param({"offset_reset_policy": "none"}, "latest or earliest", id="policy"),
    ],
)
def test_trigger_validates_when_built_directly(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScaledJobError, match=fragment):
        replace(TRIGGER, **changes)


# --------------------------------------------------------------------------- Go floats


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0.5", 0.5, id="decimal"),
        pytest.param("1", 1.0, id="integer"),
        pytest.param(".5", 0.5, id="leading-dot"),
        pytest.param("5.", 5.0, id="trailing-dot"),
        pytest.param("-2.5e-1", -0.25, id="exponent"),
        pytest.param("1e400", None, id="out-of-range-is-an-error-in-go"),
        pytest.param("", None, id="empty"),
        pytest.param(" 0.5", None, id="space"),
        pytest.param("1_0", None, id="underscore"),
        pytest.param("50%", None, id="percent-sign"),
        pytest.param("+nan", None, id="signed-nan"),
    ],
)
def test_parse_go_float(text: str, expected: float | None) -> None:
    assert parse_go_float(text) == expected


def test_parse_go_float_special_values() -> None:
    assert parse_go_float("-Inf") == -math.inf
    assert parse_go_float("infinity") == math.inf
    nan = parse_go_float("NaN")
    assert nan is not None
    assert math.isnan(nan)
