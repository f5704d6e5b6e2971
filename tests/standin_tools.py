"""Stand-ins for `docker`, `kind` and `minikube` that only record their command lines.

kind and minikube cannot run on this machine (kind needs privileged Docker; minikube is not
served), so the kind and minikube backends are proven by the exact command lines they run. Each
stand-in appends `[tool, *argv]` as one JSON line to a record file and answers the few queries
the backends make (an image's ID and platform, the engine's API version and image store, kind's
clusters and version, a node's port mappings and image) from environment variables the test
sets; `docker image save --output FILE` creates FILE, and with `STANDIN_HANG` set `kind create
cluster` prints a line and hangs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

SCRIPT = """\
import json, os, sys
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["STANDIN_RECORD"], "a", encoding="utf-8") as record:
    record.write(json.dumps([tool, *args]) + "\\n")
if tool == "docker":
    if args[:3] == ["image", "inspect", "--format"] and args[3] == "{{.Id}}":
        print("sha256:" + os.environ["STANDIN_ID_" + args[4].split("/")[-1].split(":")[0]])
    elif args[:3] == ["image", "inspect", "--format"]:
        print(os.environ.get("STANDIN_PLATFORM", "linux/amd64"))
    elif args[:1] == ["version"]:
        print(os.environ.get("STANDIN_API", "1.52"))
    elif args[:3] == ["info", "--format", "{{json .DriverStatus}}"]:
        print(os.environ.get("STANDIN_DRIVER_STATUS", "[]"))
    elif args[:3] == ["info", "--format", "{{.NCPU}}"]:
        print(os.environ.get("STANDIN_NCPU", "8"))
    elif args[:2] == ["image", "save"]:
        open(args[args.index("--output") + 1], "wb").close()
    elif args[:1] == ["port"]:
        print("127.0.0.1:" + args[2].split("/")[0])
    elif args[:3] == ["inspect", "--format", "{{.Config.Image}}"]:
        print(os.environ.get("STANDIN_NODE_IMAGE", ""))
    elif args[:1] == ["ps"]:
        print(os.environ.get("STANDIN_NODES", ""))
elif tool == "kind":
    if args[:2] == ["get", "clusters"]:
        print(os.environ.get("STANDIN_CLUSTERS", ""))
    elif args[:2] == ["get", "kubeconfig"]:
        print("apiVersion: v1")
    elif args[:1] == ["version"]:
        print(os.environ.get("STANDIN_KIND_VERSION", "kind v0.29.0 go1.24.2 linux/amd64"))
    elif args[:2] == ["create", "cluster"] and os.environ.get("STANDIN_HANG"):
        print(" \u2713 Preparing nodes", flush=True)
        import time
        time.sleep(300)
"""


class Recorder:
    """Puts the stand-ins first on PATH; `calls()` are the command lines they received."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir(parents=True)
        self.record = directory / "calls.jsonl"
        self.record.touch()
        for tool in ("docker", "kind", "minikube"):
            path = self.bin / tool
            path.write_text(f"#!{sys.executable}\n{SCRIPT}")
            path.chmod(0o755)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("STANDIN_RECORD", str(self.record))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.record.read_text().splitlines()]
