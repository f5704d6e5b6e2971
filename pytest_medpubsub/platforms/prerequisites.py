"""Prerequisites of the cluster platforms, each checked within seconds and reported in one
sentence (`PlatformUnavailable`), so that `pytest --medpubsub-cluster=kind` on a machine without
Docker stops at once with a message instead of a traceback minutes later.
"""

from __future__ import annotations

from pytest_medpubsub.platforms.base import PlatformUnavailable
from pytest_medpubsub.platforms.commands import probe, which

PROBE_TIMEOUT_S = 15.0


def require_tool(tool: str, purpose: str) -> str:
    """The path of `tool`, or `PlatformUnavailable` saying what it is needed for."""
    path = which(tool)
    if path is None:
        raise PlatformUnavailable(f"{tool} is not installed (not on PATH); {purpose}.")
    return path


def require_docker_engine(platform: str) -> None:
    """A running Docker engine, not just the client: images are built and loaded with it."""
    require_tool("docker", f"the {platform} platform builds the service images with Docker")
    outcome = probe(["docker", "info", "--format", "{{.ServerVersion}}"], timeout_s=PROBE_TIMEOUT_S)
    if outcome is None or not outcome.ok or not outcome.stdout.strip():
        raise PlatformUnavailable(
            f"The Docker engine is not running (`docker info` cannot reach it), and the "
            f"{platform} platform needs it to build and run the images; start Docker and retry."
        )


def current_context() -> str:
    """kubectl's current context, or `PlatformUnavailable` when there is none."""
    require_tool("kubectl", "the existing-cluster platform drives the cluster with kubectl")
    outcome = probe(["kubectl", "config", "current-context"], timeout_s=PROBE_TIMEOUT_S)
    if outcome is None or not outcome.ok or not outcome.stdout.strip():
        raise PlatformUnavailable(
            "kubectl has no current context; point KUBECONFIG (or `kubectl config use-context`) "
            "at the cluster to test."
        )
    return outcome.stdout.strip()


def require_reachable(context: str) -> None:
    """The API server of `context` answers."""
    outcome = probe(
        ["kubectl", "--context", context, "version", "--request-timeout=10s", "-o", "json"],
        timeout_s=PROBE_TIMEOUT_S,
    )
    if outcome is None or not outcome.ok:
        raise PlatformUnavailable(
            f"the cluster of kubectl context {context!r} does not answer; check the context "
            "and your network."
        )
