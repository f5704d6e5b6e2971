"""The dispatcher's environment (DISPATCHER_*), read once at start with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DispatcherSettings(BaseSettings):
    """The dispatcher: its group, how it starts makers, how many at once, how it retries them.

    `launcher`: `process` starts `medpubsub make-order` processes on this host (the local
    platform), `job` creates a Kubernetes Job per order from `job_template` in `namespace`.
    `state_file` (process launcher): where the makers started are written down, so that a
    dispatcher started again after a crash watches (and retries) the makers of its previous life.
    """

    model_config = SettingsConfigDict(env_prefix="DISPATCHER_", extra="ignore", frozen=True)

    group_id: Annotated[str, Field(min_length=1)] = "dispatcher"
    launcher: Literal["process", "job"] = "process"
    # As many makers at once as the ScaledJob's maxReplicaCount allows Jobs; beyond it the
    # dispatcher stops taking orders until one finishes.
    max_makers: Annotated[int, Field(ge=1, le=1000)] = 40
    # A maker that failed before its order was made is started again this often at most, after
    # backoff_seconds, doubling each time; then the order goes to the dead-letter topic.
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    backoff_seconds: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 0.5
    state_file: Path | None = None
    pause_file: Path | None = None
    namespace: Annotated[str, Field(min_length=1)] = "medpubsub"
    job_template: Path = Path("/etc/medpubsub/dispatched-job.yaml")
