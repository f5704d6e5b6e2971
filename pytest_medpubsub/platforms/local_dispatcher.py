"""The dispatcher design on this machine: the local system (`local_system.py`) with `medpubsub
dispatcher` in place of the KEDA-exact ScaledJob.

The dispatcher runs as one process (a Deployment's single pod) that starts a `medpubsub
make-order` process per order; the platform restarts it when it dies, as Kubernetes restarts a
pod. The platform sees the dispatched makers through the dispatcher's state file (the makers it
watches, with their pids), so the scenarios' surface is the same as with the ScaledJob:
`medicine_jobs()` counts the dispatched makers still running, `kill_medicine` SIGKILLs them,
`lag()` is the dispatcher's group's, `pause_scaling` stops dispatching (a pause file the
dispatcher looks for), and no maker is kept warm.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pytest_medpubsub import processes, progress, state
from pytest_medpubsub.designs import dispatcher as this_design
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.kafka.offsets import OffsetReader, start_new_group_at_end
from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem
from pytest_medpubsub.waiting import WaitTimeout, wait_until

GROUP = "dispatcher"
DISPATCHER_READY_TIMEOUT_S = 60.0
# A dispatcher that stops lets its makers finish (6 s) before it stops them.
DISPATCHER_STOP_GRACE_S = 15.0
MAKER_MARKER = "make-order"


class LocalDispatcherPlatform(LocalSystem):
    """The local platform of the dispatcher design (module docstring)."""

    design = this_design.NAME

    def __init__(self, run: LocalRun) -> None:
        super().__init__(run)
        self._dispatcher: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._keeper = threading.Thread(target=self._keep_dispatcher, name="local-dispatcher")
        self.dispatcher_restarts = 0
        self._created_before = 0  # makers started by the dispatcher's earlier lives

    @property
    def dispatcher_dir(self) -> Path:
        return self.run_dir / "dispatcher"

    @property
    def makers_file(self) -> Path:
        return self.dispatcher_dir / "makers.json"

    @property
    def pause_file(self) -> Path:
        return self.dispatcher_dir / "paused"

    @property
    def dispatcher_pid(self) -> int | None:
        process = self._dispatcher
        return process.pid if process is not None and process.poll() is None else None

    # -- Platform ------------------------------------------------------------------------------

    def medicine_jobs(self) -> int:
        return len(self._live_makers())

    def kill_medicine(self, count: int = 1) -> list[str]:
        """SIGKILL the `count` oldest dispatched makers (each is in the middle of its order); a
        candidate that turns out not to be a maker any more is passed over for the next one."""
        return self._signal_makers(signal.SIGKILL, count)

    def stop_makers(self) -> list[str]:
        """SIGTERM every dispatched maker (its order is dispatched again, and made once)."""
        return self._signal_makers(signal.SIGTERM)

    def _signal_makers(self, signal_number: int, count: int | None = None) -> list[str]:
        """Send `signal_number` to the `count` oldest dispatched makers (all when None); their
        names."""
        signalled: list[str] = []
        for maker in sorted(self._live_makers(), key=lambda maker: maker["started_at_ns"]):
            if len(signalled) == count:
                break
            if _runs_a_maker(maker["pid"]):  # the pid may have ended (and been reused) since
                os.kill(maker["pid"], signal_number)
                signalled.append(str(maker["name"]))
        return signalled

    def warm_makers(self) -> int:
        return 0

    @property
    def jobs_created(self) -> int:
        """Makers started so far, by every life of the dispatcher."""
        return self._created_before + self._ledger_created()

    def pause_scaling(self, paused: bool) -> None:
        if paused:
            self.pause_file.touch()
        else:
            self.pause_file.unlink(missing_ok=True)

    def kill_dispatcher(self) -> int | None:
        """SIGKILL the dispatcher (chaos); the platform starts it again. Its pid, if it ran."""
        pid = self.dispatcher_pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return pid

    def dump_diagnostics(self, directory: Path) -> None:
        super().dump_diagnostics(directory)
        makers = self.dispatcher_dir / "makers"
        if makers.exists():
            shutil.copytree(makers, directory / "logs" / "makers", dirs_exist_ok=True)

    # -- the design's hooks --------------------------------------------------------------------

    def _start_makers(self) -> None:
        self.dispatcher_dir.mkdir(parents=True, exist_ok=True)
        self.pause_file.unlink(missing_ok=True)
        topic = self.kafka.orders_topic
        # The orders already on the topic belong to the other design's makers (the benchmark
        # runs both on one broker).
        start_new_group_at_end(self.kafka, GROUP, topic)
        self._offsets = OffsetReader(self.kafka, GROUP, topic)
        self._spawn_dispatcher()
        self._keeper.start()

    def _wait_until_serving(self) -> None:
        topic = self.kafka.orders_topic
        with progress.step(f"waiting for the dispatcher to own the partitions of {topic}"):
            wait_until(
                lambda: group_assignment(self.kafka, GROUP, topic),
                lambda seen: seen.fully_assigned and seen.members_with_partitions >= 1,
                DISPATCHER_READY_TIMEOUT_S,
                f"the dispatcher owning every partition of {topic}",
                interval_s=0.25,
            )

    def _describe(self) -> str:
        return f"dispatcher pid {self.dispatcher_pid} in group {GROUP}, one maker process per order"

    def _stop_makers(self) -> None:
        """The dispatcher (it lets its makers finish), then any maker of an earlier life."""
        if self._keeper.is_alive():
            self._keeper.join(timeout=10)
        with self._lock:
            if self._dispatcher is not None:
                processes.stop(self._dispatcher, grace_s=DISPATCHER_STOP_GRACE_S)
        for maker in self._live_makers():
            processes.stop_pid(maker["pid"], grace_s=5)

    def _group_id(self) -> str:
        return GROUP

    def _running_makers(self) -> list[state.ProcessInfo]:
        return [
            state.ProcessInfo(
                name=maker["name"], pid=maker["pid"], started_at_ns=maker["started_at_ns"]
            )
            for maker in self._live_makers()
        ]

    def _status_lines(self) -> list[str]:
        return [
            f"dispatcher pid: {self.dispatcher_pid}",
            f"dispatcher restarts: {self.dispatcher_restarts}",
            f"makers created: {self.jobs_created}",
            f"makers running: {[maker['name'] for maker in self._live_makers()]}",
            f"paused: {self.pause_file.exists()}",
        ]

    # -- the dispatcher process ----------------------------------------------------------------

    def _spawn_dispatcher(self) -> None:
        with self._lock:
            self._dispatcher = processes.spawn(
                [sys.executable, "-m", "medpubsub", "dispatcher"],
                env=self._dispatcher_environment(),
                log_path=self.run_dir / "logs" / "dispatcher.log",
            )

    def _keep_dispatcher(self) -> None:
        """Start the dispatcher again when it died, as Kubernetes restarts a Deployment's pod."""
        while not self._stopping.wait(0.25):
            process = self._dispatcher
            if process is None or process.poll() is None:
                continue
            progress.say(f"the dispatcher exited with {process.returncode}; starting it again")
            self._created_before += self._ledger_created()
            self.dispatcher_restarts += 1
            self._spawn_dispatcher()

    def _dispatcher_environment(self) -> dict[str, str]:
        # The dispatcher and the makers it starts share an identity on a secured broker: the
        # makers', whose rights cover the dispatcher's reads (security.py).
        return self._environment(
            {
                "DISPATCHER_GROUP_ID": GROUP,
                "DISPATCHER_LAUNCHER": "process",
                "DISPATCHER_STATE_FILE": str(self.makers_file.absolute()),
                "DISPATCHER_PAUSE_FILE": str(self.pause_file.absolute()),
            },
            "medicine",
        )

    def _ledger(self) -> dict[str, Any]:
        try:
            document = json.loads(self.makers_file.read_text())
        except (OSError, ValueError):  # not written yet (it is replaced atomically)
            return {"created": 0, "makers": []}
        return document if isinstance(document, dict) else {"created": 0, "makers": []}

    def _ledger_created(self) -> int:
        return int(self._ledger().get("created", 0))

    def _live_makers(self) -> list[dict[str, Any]]:
        return [
            maker
            for maker in self._ledger().get("makers", [])
            if maker.get("pid") and processes.is_alive(maker["pid"])
        ]


def _runs_a_maker(pid: int, exec_timeout_s: float = 5.0) -> bool:
    """Whether `pid` is a running maker. One the dispatcher has just forked shows the
    dispatcher's command line until it has exec'd; that moment is waited out (bounded), or a
    busy machine would make a fresh maker look like something else."""
    try:
        arguments = wait_until(
            lambda: processes.command_line(pid),
            lambda seen: MAKER_MARKER in seen or "dispatcher" not in seen,
            exec_timeout_s,
            f"pid {pid} to exec a maker",
            interval_s=0.02,
        )
    except WaitTimeout:
        return False
    return processes.is_alive(pid) and MAKER_MARKER in arguments
