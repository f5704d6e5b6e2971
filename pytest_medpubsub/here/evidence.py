"""What the cluster itself says about the makers after `make e2e-here`: which Jobs exist, who
owns them, and which image their pods ran (pure summary of `kubectl get -o json`, unit-tested).

It is the proof that KEDA made the makers: every Job owned by the ScaledJob `medicine`, its pods
running the medicine image that was loaded into the cluster's containerd.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def summarize(jobs: dict[str, Any], pods: dict[str, Any]) -> dict[str, Any]:
    """The Jobs (owner, outcome, image) and their pods' images, plus totals."""
    pods_by_job: dict[str, list[dict[str, Any]]] = {}
    for pod in pods.get("items", []):
        job = pod.get("metadata", {}).get("labels", {}).get("job-name")
        if job:
            pods_by_job.setdefault(job, []).append(pod)
    listed = []
    for job in jobs.get("items", []):
        name = job["metadata"]["name"]
        owners = [
            f"{owner.get('kind')}/{owner.get('name')}"
            for owner in job["metadata"].get("ownerReferences", [])
        ]
        containers = job["spec"]["template"]["spec"].get("containers", [])
        status = job.get("status", {})
        listed.append(
            {
                "name": name,
                "owners": owners,
                "image": containers[0].get("image") if containers else None,
                "succeeded": int(status.get("succeeded", 0) or 0),
                "failed": int(status.get("failed", 0) or 0),
                "pods": [_pod(pod) for pod in pods_by_job.get(name, [])],
            }
        )
    return {
        "jobs": len(listed),
        "owners": dict(Counter(owner for job in listed for owner in job["owners"])),
        "images": dict(Counter(str(job["image"]) for job in listed)),
        "pod_images": dict(
            Counter(pod["image_id"] for job in listed for pod in job["pods"] if pod["image_id"])
        ),
        "list": listed,
    }


def _pod(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    first = statuses[0] if statuses else {}
    return {
        "name": pod["metadata"]["name"],
        "phase": pod.get("status", {}).get("phase"),
        "image": first.get("image"),
        "image_id": first.get("imageID") or None,
    }


def strimzi(pods: dict[str, Any], users: dict[str, Any]) -> dict[str, Any]:
    """Who runs the Kafka pods (Strimzi's StrimziPodSet, not a StatefulSet of ours) and whether
    every KafkaUser is Ready: the proof that Strimzi, not the harness, made the broker."""
    kafka_pods = [
        {
            "name": pod["metadata"]["name"],
            "owners": [
                f"{owner.get('kind')}/{owner.get('name')}"
                for owner in pod["metadata"].get("ownerReferences", [])
            ],
            "phase": pod.get("status", {}).get("phase"),
        }
        for pod in pods.get("items", [])
    ]
    user_states = {
        user["metadata"]["name"]: _ready(user.get("status", {}).get("conditions", []))
        for user in users.get("items", [])
    }
    return {
        "kafka_pods": kafka_pods,
        "kafka_pod_owner_kinds": dict(
            Counter(owner.split("/")[0] for pod in kafka_pods for owner in pod["owners"])
        ),
        "kafka_users": user_states,
        "kafka_users_ready": bool(user_states) and all(user_states.values()),
    }


def _ready(conditions: list[dict[str, Any]]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
