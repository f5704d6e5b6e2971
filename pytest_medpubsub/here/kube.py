"""Asking the cluster how it is, with the kubectl on the machine and our kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_medpubsub.here.commands import run


def kubectl(kubeconfig: Path, *args: str, timeout_s: float = 30.0) -> str:
    return run(["kubectl", "--kubeconfig", str(kubeconfig), *args], timeout_s).stdout


def get_json(kubeconfig: Path, *args: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(kubectl(kubeconfig, "get", *args, "-o", "json"))
    return parsed


def node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def nodes_summary(kubeconfig: Path) -> str:
    """e.g. "medpubsub-here Ready" or "medpubsub-here NotReady (KubeletNotReady: ...)"."""
    nodes = get_json(kubeconfig, "nodes").get("items", [])
    if not nodes:
        return "no node registered"
    parts = []
    for node in nodes:
        name = node["metadata"]["name"]
        if node_ready(node):
            parts.append(f"{name} Ready")
        else:
            ready = [
                c for c in node.get("status", {}).get("conditions", []) if c.get("type") == "Ready"
            ]
            why = f" ({ready[0].get('reason')}: {ready[0].get('message')})" if ready else ""
            parts.append(f"{name} NotReady{why}")
    return ", ".join(parts)


def deployment_summary(deployment: dict[str, Any]) -> str:
    status = deployment.get("status", {})
    wanted = deployment.get("spec", {}).get("replicas", 1)
    return f"{status.get('availableReplicas', 0)}/{wanted} available"


def deployment_available(deployment: dict[str, Any]) -> bool:
    wanted = deployment.get("spec", {}).get("replicas", 1)
    return int(deployment.get("status", {}).get("availableReplicas", 0)) >= int(wanted)
