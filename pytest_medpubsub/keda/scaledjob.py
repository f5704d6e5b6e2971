"""Read the medicine ScaledJob manifest into what the local platform needs to act like KEDA.

The manifest in `keda/` is the one source of truth for both worlds: on a cluster KEDA reads it, and
locally the platform reads the same file through here — scaling settings, the Kafka trigger and
the maker container's command and environment. Validation follows the KEDA 2.20.2 CRD (and the
Kubernetes types it embeds), so a manifest accepted here is one the API server would accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml

from pytest_medpubsub.keda.scaler import (
    DEFAULT_JOBS_HISTORY_LIMIT,
    DEFAULT_POLLING_INTERVAL,
    MultipleScalersCalculation,
    ScalingSpec,
    ScalingStrategy,
    Strategy,
)
from pytest_medpubsub.keda.trigger import (
    KafkaTriggerMetadata,
    ScaledJobError,
)

__all__ = ["EnvVar", "ScaledJobError", "ScaledJobSpec", "load_scaled_job", "parse_scaled_job"]

API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledJob"


@dataclass(frozen=True)
class EnvVar:
    """One `env` entry of the maker container; `value` is None for a `valueFrom` (secret, config
    map, field) that only a cluster can resolve — the name is kept so the caller can supply it."""

    name: str
    value: str | None


@dataclass(frozen=True)
class ScaledJobSpec:
    """The parts of a ScaledJob the local platform reproduces."""

    name: str
    scaling: ScalingSpec
    trigger: KafkaTriggerMetadata
    container: str
    image: str | None
    env: tuple[EnvVar, ...]
    command: tuple[str, ...]
    args: tuple[str, ...]
    active_deadline_seconds: int | None = None
    backoff_limit: int | None = None

    @property
    def literal_env(self) -> dict[str, str]:
        """The environment variables with a literal value (what a local process can be given)."""
        return {e.name: e.value for e in self.env if e.value is not None}


def load_scaled_job(path: Path | str, name: str | None = None) -> ScaledJobSpec:
    """Read the ScaledJob (the one named `name`, when given) from a YAML file of any documents."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScaledJobError(f"{path}: cannot read the ScaledJob manifest ({exc}).") from exc
    return parse_scaled_job(text, source=str(path), name=name)


def parse_scaled_job(
    text: str, *, source: str = "<string>", name: str | None = None
) -> ScaledJobSpec:
    """Parse the ScaledJob out of YAML text; `source` names it in error messages."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ScaledJobError(f"{source}: not valid YAML{line}.") from exc
    found = [
        d
        for d in documents
        if isinstance(d, dict) and d.get("apiVersion") == API_VERSION and d.get("kind") == KIND
    ]
    if name is not None:
        found = [
            d for d in found if _dict(d.get("metadata"), "metadata", source).get("name") == name
        ]
    if len(found) != 1:
        which = f"{KIND} named {name!r}" if name else f"{API_VERSION} {KIND}"
        raise ScaledJobError(f"{source}: expected exactly one {which}, found {len(found)}.")
    return _scaled_job(found[0], source)


def scaled_job_of(document: Mapping[str, object], *, source: str) -> ScaledJobSpec:
    """The ScaledJob of one manifest object already read (a render's), without a YAML pass."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise ScaledJobError(
            f"{source}: expected a {API_VERSION} {KIND}, got {document.get('apiVersion')}"
            f" {document.get('kind')}."
        )
    return _scaled_job(document, source)


def _scaled_job(doc: Mapping[str, object], source: str) -> ScaledJobSpec:
    job_name = _str(
        _dict(doc.get("metadata"), "metadata", source).get("name"), "metadata.name", source
    )
    where = f"{source}: ScaledJob {job_name}"
    spec = _dict(doc.get("spec"), "spec", where)
    target = _dict(spec.get("jobTargetRef"), "spec.jobTargetRef", where)
    pod = _dict(
        _dict(target.get("template"), "spec.jobTargetRef.template", where).get("spec"),
        "spec.jobTargetRef.template.spec",
        where,
    )
    container = _container(pod, _opt_str(spec, "envSourceContainerName", "spec", where), where)
    c_where = f"{where} container {container['name']}"
    env = _env(container.get("env"), c_where)
    return ScaledJobSpec(
        name=job_name,
        scaling=_scaling(spec, where),
        trigger=_trigger(spec.get("triggers"), {e.name: e.value for e in env if e.value}, where),
        container=str(container["name"]),
        image=_opt_str(container, "image", "", c_where),
        env=env,
        command=_str_list(container.get("command"), "command", c_where),
        args=_str_list(container.get("args"), "args", c_where),
        active_deadline_seconds=_opt_int(
            target, "activeDeadlineSeconds", "spec.jobTargetRef", where, 1
        ),
        backoff_limit=_opt_int(target, "backoffLimit", "spec.jobTargetRef", where, 0),
    )


def _scaling(spec: Mapping[str, object], where: str) -> ScalingSpec:
    node = _dict(spec.get("scalingStrategy", {}), "spec.scalingStrategy", where)
    parent = "spec.scalingStrategy"
    # Empty means the default in KEDA's Go switches; ScalingStrategy checks the names.
    kind = _opt_str(node, "strategy", parent, where) or "default"
    calculation = _opt_str(node, "multipleScalersCalculation", parent, where) or "max"
    deduction = _opt_int(node, "customScalingQueueLengthDeduction", parent, where, None)
    # A string in the CRD, e.g. "0.5"; KEDA parses it (or falls back) only when it scales.
    percentage = _opt_str(node, "customScalingRunningJobPercentage", parent, where)
    conditions = _str_list(
        node.get("pendingPodConditions"), f"{parent}.pendingPodConditions", where
    )
    try:
        strategy = ScalingStrategy(
            strategy=cast(Strategy, kind),
            custom_scaling_queue_length_deduction=deduction,
            custom_scaling_running_job_percentage=percentage,
            multiple_scalers_calculation=cast(MultipleScalersCalculation, calculation),
            pending_pod_conditions=conditions,
        )
    except ScaledJobError as exc:
        raise ScaledJobError(f"{where}: {exc}") from exc
    # The CRD's minimums are checked here, so ScalingSpec's own checks cannot fail.
    return ScalingSpec(
        max_replica_count=_opt_int(spec, "maxReplicaCount", "spec", where, 1),
        min_replica_count=_opt_int(spec, "minReplicaCount", "spec", where, 0) or 0,
        polling_interval=_int_or(spec, "pollingInterval", where, 1, DEFAULT_POLLING_INTERVAL),
        successful_jobs_history_limit=_int_or(
            spec, "successfulJobsHistoryLimit", where, 0, DEFAULT_JOBS_HISTORY_LIMIT
        ),
        failed_jobs_history_limit=_int_or(
            spec, "failedJobsHistoryLimit", where, 0, DEFAULT_JOBS_HISTORY_LIMIT
        ),
        scaling_strategy=strategy,
    )


def _trigger(triggers: object, env: Mapping[str, str], where: str) -> KafkaTriggerMetadata:
    if not isinstance(triggers, list) or len(triggers) != 1:
        count = len(triggers) if isinstance(triggers, list) else 0
        raise ScaledJobError(
            f"{where}: spec.triggers must hold exactly one kafka trigger, found {count} triggers."
        )
    trigger = _dict(triggers[0], "spec.triggers[0]", where)
    if trigger.get("type") != "kafka":
        raise ScaledJobError(
            f"{where}: spec.triggers[0].type must be kafka, got {trigger.get('type')!r}."
        )
    metadata = _dict(trigger.get("metadata"), "spec.triggers[0].metadata", where)
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise ScaledJobError(
                f"{where}: trigger metadata {key} must be a quoted string (Kubernetes stores "
                f"strings only), got {value!r}."
            )
    strings = {str(k): str(v) for k, v in metadata.items()}
    try:
        return KafkaTriggerMetadata.from_metadata(strings, resolved_env=env)
    except ScaledJobError as exc:
        raise ScaledJobError(f"{where}: {exc}") from exc


def _container(
    pod: Mapping[str, object], source_name: str | None, where: str
) -> Mapping[str, object]:
    """The container KEDA resolves `...FromEnv` from: `envSourceContainerName`, else the first."""
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ScaledJobError(
            f"{where}: spec.jobTargetRef.template.spec.containers must not be empty."
        )
    found = [_dict(c, "a container", where) for c in containers]
    for c in found:
        _str(c.get("name"), "spec.jobTargetRef.template.spec.containers[].name", where)
    if source_name is None:
        return found[0]
    for c in found:
        if c["name"] == source_name:
            return c
    raise ScaledJobError(f"{where}: envSourceContainerName {source_name!r} names no container.")


def _env(entries: object, where: str) -> tuple[EnvVar, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ScaledJobError(f"{where}: env must be a list, got {type(entries).__name__}.")
    env: list[EnvVar] = []
    for entry in entries:
        item = _dict(entry, "an env entry", where)
        env_name = _str(item.get("name"), "env[].name", where)
        if "valueFrom" in item:
            env.append(EnvVar(env_name, None))
        else:
            # Kubernetes' EnvVar.value defaults to "".
            env.append(EnvVar(env_name, _opt_str(item, "value", f"env {env_name}", where) or ""))
    return tuple(env)


# --------------------------------------------------------------------------- typed access


def _dict(value: object, what: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ScaledJobError(f"{where}: {what} must be a mapping, got {_shown(value)}.")
    return value


def _str(value: object, what: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScaledJobError(f"{where}: {what} must be a non-empty string, got {_shown(value)}.")
    return value


def _opt_str(node: Mapping[str, object], key: str, parent: str, where: str) -> str | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScaledJobError(
            f"{where}: {_path(parent, key)} must be a string, got {_shown(value)}."
        )
    return value


def _opt_int(
    node: Mapping[str, object], key: str, parent: str, where: str, minimum: int | None
) -> int | None:
    value = node.get(key)
    if value is None:
        return None
    # YAML's true/false are ints to Python; Kubernetes would reject them here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScaledJobError(
            f"{where}: {_path(parent, key)} must be an integer, got {_shown(value)}."
        )
    if minimum is not None and value < minimum:
        raise ScaledJobError(
            f"{where}: {_path(parent, key)} must be at least {minimum}, got {value}."
        )
    return value


def _int_or(node: Mapping[str, object], key: str, where: str, minimum: int, default: int) -> int:
    value = _opt_int(node, key, "spec", where, minimum)
    return default if value is None else value


def _str_list(value: object, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScaledJobError(f"{where}: {what} must be a list of strings, got {_shown(value)}.")
    return tuple(value)


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(value)
