"""The services' environment (docs/design.md §2.2), read once at start with one-line errors.

A bad value must stop a pod with a message an operator can act on, so validation errors are turned
into `ConfigError("MEDICINE_TAB_SECONDS='1.5' is invalid: ...")` and the CLI exits with status 2.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medpubsub.messages import MAX_TABS, MIN_TABS

MIN_TAB_SECONDS = 2.0


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one sentence for the operator."""


class KafkaSettings(BaseSettings):
    """How to reach Kafka and which topics to use; shared by every process of the system."""

    model_config = SettingsConfigDict(env_prefix="MEDPUBSUB_", extra="ignore", frozen=True)

    kafka_bootstrap: Annotated[str, Field(min_length=1)] = "localhost:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    orders_topic: Annotated[str, Field(min_length=1)] = "tabs.orders"
    deliveries_topic: Annotated[str, Field(min_length=1)] = "tabs.deliveries"
    dlq_topic: Annotated[str, Field(min_length=1)] = "tabs.dlq"

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "SASL needs MEDPUBSUB_KAFKA_SASL_MECHANISM, MEDPUBSUB_KAFKA_SASL_USERNAME and "
                "MEDPUBSUB_KAFKA_SASL_PASSWORD"
            )
        return self


class PatientSettings(BaseSettings):
    """One patient: who it is, how many tabs it orders and how often."""

    model_config = SettingsConfigDict(env_prefix="ORBITAL_", extra="ignore", frozen=True)

    patient_id: Annotated[str, Field(min_length=1)] = Field(default_factory=socket.gethostname)
    min_tabs_count: Annotated[int, Field(ge=MIN_TABS, le=MAX_TABS)] = MIN_TABS
    max_tabs_count: Annotated[int, Field(ge=MIN_TABS, le=MAX_TABS)] = MAX_TABS
    order_period_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0

    @model_validator(mode="after")
    def _range_is_ordered(self) -> PatientSettings:
        if self.min_tabs_count > self.max_tabs_count:
            raise ValueError(
                f"ORBITAL_MIN_TABS_COUNT ({self.min_tabs_count}) must not exceed "
                f"ORBITAL_MAX_TABS_COUNT ({self.max_tabs_count})"
            )
        return self


# A maker's workers are threads that mostly sleep; this bound only catches a mistyped value.
MAX_MAKER_WORKERS = 1000


class MedicineSettings(BaseSettings):
    """One medicine maker (one KEDA Job): its group, how long it lives, how a tab is made, and
    how much it holds at once: `max_workers` tab threads shared by its orders in flight, at most
    `max_orders_in_flight` of them (0: as many as the workers allow; 1: one order at a time)."""

    model_config = SettingsConfigDict(env_prefix="MEDICINE_", extra="ignore", frozen=True)

    group_id: Annotated[str, Field(min_length=1)] = "medicine"
    max_orders: Annotated[int, Field(ge=0)] = 1
    idle_timeout_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0
    # The makers the group keeps at rest (the ScaledJob's minReplicaCount): an idle maker among
    # them stays instead of leaving, for at most `warm_seconds` (medicine/warm.py). 0: every
    # idle maker leaves.
    warm_makers: Annotated[int, Field(ge=0)] = 0
    warm_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 3000.0
    # A tab is physically at least 2 s of work; a faster setting would hide latency problems.
    tab_seconds: Annotated[float, Field(ge=MIN_TAB_SECONDS, allow_inf_nan=False)] = MIN_TAB_SECONDS
    max_workers: Annotated[int, Field(ge=1, le=MAX_MAKER_WORKERS)] = MAX_TABS
    max_orders_in_flight: Annotated[int, Field(ge=0, le=MAX_MAKER_WORKERS)] = 0
    # Present while every partition the maker owns commits without waiting (readiness.py): the
    # pod's readiness probe, and the local harness's wait for warm makers. None: not kept.
    ready_file: Path | None = None


Settings = TypeVar("Settings", bound=BaseSettings)


def load(settings_class: type[Settings]) -> Settings:
    """Read a settings class from the environment, or raise `ConfigError` with one sentence."""
    try:
        return settings_class()
    except ValidationError as error:
        raise ConfigError(_one_line(settings_class, error)) from None


def _one_line(settings_class: type[BaseSettings], error: ValidationError) -> str:
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    problems = []
    for detail in error.errors(include_url=False):
        if detail["loc"]:
            variable = f"{prefix}{detail['loc'][0]}".upper()
            problems.append(f"{variable}={detail['input']!r} is invalid: {_accepts(detail['msg'])}")
        else:  # a cross-field rule; its message already names the variables
            problems.append(_accepts(detail["msg"]))
    return "; ".join(problems)


def _accepts(message: str) -> str:
    return message.removeprefix("Value error, ")
