"""The kubelet's supervisor: what systemd does for it on a normal node.

kubeadm expects a service manager that starts the kubelet once its config exists and restarts it
whenever it exits (it does exit, by design, while it bootstraps). There is no systemd here, so
this small loop does that. `down` stops it by pid; on SIGTERM it stops the kubelet, then exits.

    python -m pytest_medpubsub.here.supervise --wait-for CONFIG --env-file FLAGS -- kubelet ...
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

RESTART_DELAY_S = 2.0


def kubeadm_args(env_file_text: str, variable: str = "KUBELET_KUBEADM_ARGS") -> list[str]:
    """The flags kubeadm writes to kubeadm-flags.env, as the systemd unit would expand them."""
    for line in env_file_text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name == variable:
            # The file quotes the value; systemd then splits `$VAR` on white space.
            return " ".join(shlex.split(value)).split()
    return []


class Supervisor:
    def __init__(self, command: list[str], wait_for: Path, env_file: Path | None) -> None:
        self.command = command
        self.wait_for = wait_for
        self.env_file = env_file
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()

    def run(self) -> int:
        while not self.stopping and not self.wait_for.exists():
            time.sleep(0.5)
        while not self.stopping:
            extra = []
            if self.env_file is not None and self.env_file.exists():
                extra = kubeadm_args(self.env_file.read_text())
            self.child = subprocess.Popen([*self.command, *extra], stdin=subprocess.DEVNULL)
            status = self._wait_child()
            if not self.stopping:
                print(f"supervise: {self.command[0]} exited with {status}; restarting", flush=True)
                time.sleep(RESTART_DELAY_S)
        return 0

    def _wait_child(self) -> int:
        assert self.child is not None
        while True:
            try:
                return self.child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if self.stopping:
                    try:
                        return self.child.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.child.kill()
                        return self.child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_medpubsub.here.supervise")
    parser.add_argument("--wait-for", type=Path, required=True)
    parser.add_argument("--env-file", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to supervise after --")
    supervisor = Supervisor(command, args.wait_for, args.env_file)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
