"""kubectl bound to one cluster and namespace: the only way the cluster platforms talk to
Kubernetes.

A subprocess per call keeps every action reproducible by hand (the failing command is in the
error message) and uses the user's kubeconfig, credentials plugins and all, exactly as kubectl
does. The methods are the handful the platform needs, each with a timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.commands import run

NAMESPACE = "medpubsub"
DEFAULT_TIMEOUT_S = 60.0

Resource = dict[str, Any]


@dataclass(frozen=True)
class Kubectl:
    """kubectl for one cluster: a kubeconfig file (kind) and/or a context (minikube, existing)."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = NAMESPACE

    def command(self, *args: str, namespace: str | None = None) -> list[str]:
        """The full command line for `args` (namespace "" means cluster-scoped / all)."""
        command = ["kubectl"]
        if self.kubeconfig is not None:
            command += ["--kubeconfig", str(self.kubeconfig)]
        if self.context is not None:
            command += ["--context", self.context]
        chosen = self.namespace if namespace is None else namespace
        if chosen:
            command += ["--namespace", chosen]
        return [*command, *args]

    def run(
        self,
        *args: str,
        namespace: str | None = None,
        stdin: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> str:
        return run(self.command(*args, namespace=namespace), timeout_s=timeout_s, stdin=stdin)

    def get(self, *args: str, namespace: str | None = None) -> Resource:
        """`kubectl get ... -o json`, parsed."""
        output = self.run("get", *args, "--output", "json", namespace=namespace)
        try:
            parsed = json.loads(output)
        except json.JSONDecodeError as error:
            raise PlatformError(
                f"`kubectl get {' '.join(args)}` printed no JSON: {error}"
            ) from None
        if not isinstance(parsed, dict):
            raise PlatformError(f"`kubectl get {' '.join(args)}` printed {type(parsed).__name__}")
        return parsed

    def items(
        self, kind: str, *, selector: str | None = None, namespace: str | None = None
    ) -> list[Resource]:
        """The objects of `kind` (matching a label `selector`, when given)."""
        args = [kind] + (["--selector", selector] if selector else [])
        return list(self.get(*args, namespace=namespace).get("items", []))

    def exists(self, kind: str, name: str, *, namespace: str | None = None) -> bool:
        output = self.run(
            "get", kind, name, "--ignore-not-found", "--output", "name", namespace=namespace
        )
        return bool(output.strip())

    def apply(
        self,
        manifest: str,
        *,
        namespace: str | None = None,
        server_side: bool = False,
        timeout_s: float = 180.0,
    ) -> None:
        """Apply YAML text; server-side for operator bundles whose CRDs exceed the annotation size
        limit of a client-side apply."""
        extra = ["--server-side", "--force-conflicts"] if server_side else []
        self.run(
            "apply",
            *extra,
            "--filename",
            "-",
            namespace=namespace,
            stdin=manifest,
            timeout_s=timeout_s,
        )

    def delete(self, *args: str, namespace: str | None = None, timeout_s: float = 300.0) -> None:
        """`kubectl delete ... --ignore-not-found --wait` within `timeout_s`."""
        self.run(
            "delete",
            *args,
            "--ignore-not-found",
            "--wait=true",
            f"--timeout={int(timeout_s)}s",
            namespace=namespace,
            timeout_s=timeout_s + 30,
        )

    def logs(
        self,
        target: str,
        *,
        namespace: str | None = None,
        tail: int = 2000,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> str:
        return self.run(
            "logs",
            target,
            f"--tail={tail}",
            "--all-containers=true",
            namespace=namespace,
            timeout_s=timeout_s,
        )
