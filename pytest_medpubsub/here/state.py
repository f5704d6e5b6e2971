"""What `up` started and changed, written as it goes, so that `down` undoes exactly that.

Written after every process start (not only at the end): an `up` that fails halfway still
leaves `down` the pids to stop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ClusterState:
    pids: dict[str, int] = field(default_factory=dict)  # what we started, by role
    dockerd_pid: int | None = None  # set only when `up` started dockerd
    uplink: str = ""
    address: str = ""
    containerd_socket: str = ""
    kubeconfig: str = ""
    keda_manifest: str = ""
    ready: bool = False

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        partial.rename(path)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        known = {key: raw[key] for key in cls.__dataclass_fields__ if key in raw}
        return cls(**known)
