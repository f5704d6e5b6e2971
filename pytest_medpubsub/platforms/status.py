"""Reading the state of Kubernetes objects as the platform needs it: one short line that a wait
can accept or reject and a timeout can quote ("what it saw last").

Pure functions over the JSON kubectl prints, so they are tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Resource = Mapping[str, Any]
READY = "Ready"
NOT_READY = "NotReady"


def deployment_state(deployment: Resource) -> str:
    """`available n/n` once every replica is updated and available, else what is missing."""
    wanted = deployment.get("spec", {}).get("replicas", 1)
    status = deployment.get("status", {})
    available = status.get("availableReplicas", 0) or 0
    if available >= wanted and (status.get("updatedReplicas", 0) or 0) >= wanted:
        return f"available {available}/{wanted}"
    conditions = status.get("conditions", [])
    latest = conditions[-1].get("message", "") if conditions else "no status yet"
    return f"{available}/{wanted} available ({latest})"


def ready_state(resource: Resource) -> str:
    """`Ready`, or why not: the Ready condition's status, reason and message (KEDA), or Strimzi's
    `NotReady` condition with its reason and message (Strimzi reports failures only there, so a
    wait that timed out says what Strimzi said, not just "not Ready")."""
    conditions = resource.get("status", {}).get("conditions", []) or []
    for condition in conditions:
        if condition.get("type") == READY and condition.get("status") == "True":
            return READY
    for condition in conditions:
        kind = condition.get("type")
        failing = kind == NOT_READY and condition.get("status") == "True"
        if kind == READY or failing:
            reason = condition.get("reason") or ""
            message = condition.get("message") or ""
            return f"{kind}={condition.get('status')} {reason}: {message}".strip()
    return "no Ready condition yet"


def is_finished(job: Resource) -> bool:
    """A Job is finished once its Complete or Failed condition is true (as KEDA counts them)."""
    return any(
        condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True"
        for condition in job.get("status", {}).get("conditions", [])
    )


def unfinished(jobs: Iterable[Resource]) -> int:
    return sum(1 for job in jobs if not is_finished(job))


def running_pods(pods: Iterable[Resource]) -> list[str]:
    """Names of pods that run now and are not being deleted, oldest first."""
    running = [
        pod
        for pod in pods
        if pod.get("status", {}).get("phase") == "Running"
        and not pod.get("metadata", {}).get("deletionTimestamp")
    ]
    running.sort(key=lambda pod: str(pod.get("status", {}).get("startTime", "")))
    return [str(pod["metadata"]["name"]) for pod in running]


def ready_pods(pods: Iterable[Resource]) -> list[str]:
    """Names of running pods whose Ready condition is true (their probes passed)."""
    running = {pod["metadata"]["name"]: pod for pod in pods}
    return [
        name
        for name in running_pods(running.values())
        if any(
            condition.get("type") == READY and condition.get("status") == "True"
            for condition in running[name].get("status", {}).get("conditions", []) or []
        )
    ]


def pods_summary(pods: Iterable[Resource]) -> str:
    """`name Phase (waiting reason)` for each pod: why a workload is not ready yet."""
    parts = []
    for pod in pods:
        status = pod.get("status", {})
        reasons = [
            container.get("state", {}).get("waiting", {}).get("reason")
            for container in status.get("containerStatuses", [])
        ]
        reason = ", ".join(reason for reason in reasons if reason)
        phase = status.get("phase", "Unknown")
        parts.append(f"{pod['metadata']['name']} {phase}" + (f" ({reason})" if reason else ""))
    return "; ".join(parts) or "no pods"
