"""How the dispatcher starts a maker for one order: a local process, or a Kubernetes Job.

A launcher only starts makers, tells whether each has ended and how, and cleans up after the
ones that made their order; retries and dead letters are the dispatcher's (service.py). Both
find the makers of a previous life of the dispatcher again (`recover`), so that a dispatcher
killed mid-stream goes on watching the makers it had started.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from medpubsub.medicine.one_order import ORDER_VARIABLE, DispatchedOrder

log = logging.getLogger("medpubsub.dispatcher")

# The exit status of `medpubsub make-order` for a configuration error: retrying will not help.
EXIT_CONFIG = 2
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "dispatched-maker"
ORDER_ANNOTATION = "medpubsub.io/order"
LIST_INTERVAL_S = 1.0


class Ended(enum.Enum):
    MADE = "made"  # exit 0: made, or found already made
    FAILED = "failed"  # crashed, killed, stopped mid-order, or a Kafka failure: start it again
    REJECTED = "rejected"  # the maker refused the order (configuration): give it up
    GONE = "gone"  # a maker of a previous life ended unseen: start it again to find out


class LaunchFailed(Exception):
    """The maker could not be started (no process, API refused); the order is not committed."""


@dataclass(frozen=True)
class Maker:
    """A maker started for one attempt at one order."""

    name: str
    order_id: str
    order: DispatchedOrder
    attempt: int
    started_at_ns: int
    pid: int | None = None


def maker_name(order_id: str, attempt: int) -> str:
    """Named from the order id, so a repeated create of the same attempt is the same maker."""
    return f"maker-{order_id}" if attempt == 1 else f"maker-{order_id}-r{attempt}"


class Launcher(abc.ABC):
    @abc.abstractmethod
    def launch(self, order_id: str, order: DispatchedOrder, attempt: int) -> Maker:
        """Start a maker for `order`; it exists when this returns (else `LaunchFailed`)."""

    @abc.abstractmethod
    def ended(self, makers: list[Maker]) -> dict[str, Ended]:
        """How each of `makers` that has ended ended, by name (running ones are left out)."""

    @abc.abstractmethod
    def forget(self, maker: Maker) -> None:
        """The maker ended and the dispatcher is done with it: clean up after it."""

    @abc.abstractmethod
    def recover(self) -> list[Maker]:
        """The makers a previous life of the dispatcher had started and not forgotten."""

    def record(self, makers: list[Maker], created: int) -> None:  # noqa: B027 - optional
        """Write down the makers being watched, before their orders' offsets are committed."""

    def close(self, grace_s: float) -> None:  # noqa: B027 - optional
        """The dispatcher stops: what to do with the makers still running."""


# ---------------------------------------------------------------------------- local processes


class _Ledger(BaseModel):
    """The process launcher's state file: the makers being watched (for `recover` and for the
    harness, which counts and kills them by pid)."""

    model_config = ConfigDict(frozen=True)

    dispatcher_pid: int
    created: int
    makers: list[dict[str, Any]]
    updated_at_ns: int


class ProcessLauncher(Launcher):
    """`medpubsub make-order` processes on this host, each in its own session (a Job's pod).

    A maker outlives a dispatcher killed with SIGKILL, as a Job outlives its creator; the next
    dispatcher finds it in the state file and watches its pid.
    """

    def __init__(
        self, environment: Mapping[str, str], state_file: Path | None, log_dir: Path | None
    ) -> None:
        self._environment = dict(environment)
        self._state_file = state_file
        self._log_dir = log_dir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def launch(self, order_id: str, order: DispatchedOrder, attempt: int) -> Maker:
        name = maker_name(order_id, attempt)
        environment = self._environment | {ORDER_VARIABLE: order.model_dump_json()}
        log_file: Any = subprocess.DEVNULL
        try:
            if self._log_dir is not None:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                log_file = (self._log_dir / f"{name}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "medpubsub", "make-order"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise LaunchFailed(f"cannot start a maker for order {order_id}: {error}") from error
        finally:
            if not isinstance(log_file, int):
                log_file.close()
        self._processes[name] = process
        return Maker(name, order_id, order, attempt, time.time_ns(), process.pid)

    def ended(self, makers: list[Maker]) -> dict[str, Ended]:
        result: dict[str, Ended] = {}
        for maker in makers:
            process = self._processes.get(maker.name)
            if process is None:  # started by a previous life: only its pid is known
                if maker.pid is None or not _alive(maker.pid):
                    result[maker.name] = Ended.GONE
                continue
            code = process.poll()
            if code is None:
                continue
            if code == 0:
                result[maker.name] = Ended.MADE
            elif code == EXIT_CONFIG:
                result[maker.name] = Ended.REJECTED
            else:
                result[maker.name] = Ended.FAILED
        return result

    def forget(self, maker: Maker) -> None:
        self._processes.pop(maker.name, None)

    def recover(self) -> list[Maker]:
        if self._state_file is None or not self._state_file.exists():
            return []
        try:
            ledger = _Ledger.model_validate_json(self._state_file.read_text())
        except ValueError as error:
            log.warning("ignoring the unreadable state file %s: %s", self._state_file, error)
            return []
        return [
            Maker(
                name=entry["name"],
                order_id=entry["order_id"],
                order=DispatchedOrder.model_validate(entry["order"]),
                attempt=entry["attempt"],
                started_at_ns=entry["started_at_ns"],
                pid=entry.get("pid"),
            )
            for entry in ledger.makers
        ]

    def record(self, makers: list[Maker], created: int) -> None:
        if self._state_file is None:
            return
        ledger = _Ledger(
            dispatcher_pid=os.getpid(),
            created=created,
            makers=[
                {
                    "name": maker.name,
                    "order_id": maker.order_id,
                    "order": maker.order.model_dump(),
                    "attempt": maker.attempt,
                    "started_at_ns": maker.started_at_ns,
                    "pid": maker.pid,
                }
                for maker in makers
            ],
            updated_at_ns=time.time_ns(),
        )
        target = self._state_file
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".dispatcher-")
        with os.fdopen(descriptor, "w") as handle:
            handle.write(ledger.model_dump_json())
        Path(temporary).replace(target)  # atomic: a reader never sees half a file

    def close(self, grace_s: float) -> None:
        """Let the running makers finish their orders for `grace_s`, then stop them (SIGTERM:
        they abort, and the state file keeps them for the next dispatcher)."""
        deadline = time.monotonic() + grace_s
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        running = [process for process in self._processes.values() if process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not reaped by its new parent yet) has ended
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


# ---------------------------------------------------------------------------- Kubernetes Jobs


def job_manifest(template: Mapping[str, Any], maker: Maker) -> dict[str, Any]:
    """The Job for `maker`: the hardened template, named from the order id, the order in its
    environment (and in an annotation, for `recover`)."""
    job: dict[str, Any] = json.loads(json.dumps(template))  # a deep copy of plain data
    metadata = job.setdefault("metadata", {})
    metadata["name"] = maker.name
    labels = metadata.setdefault("labels", {})
    labels[COMPONENT_LABEL] = COMPONENT
    annotations = metadata.setdefault("annotations", {})
    annotations[ORDER_ANNOTATION] = json.dumps(
        {"order_id": maker.order_id, "attempt": maker.attempt, "order": maker.order.model_dump()}
    )
    pod = job["spec"]["template"]
    pod.setdefault("metadata", {}).setdefault("labels", {})[COMPONENT_LABEL] = COMPONENT
    for container in pod["spec"]["containers"]:
        env = [entry for entry in container.get("env", []) if entry["name"] != ORDER_VARIABLE]
        container["env"] = [*env, {"name": ORDER_VARIABLE, "value": maker.order.model_dump_json()}]
    return job


class JobLauncher(Launcher):
    """A `batch/v1` Job per order through the API (the kubernetes client, in-cluster config).

    The Job's own `backoffLimit` is 0: the dispatcher retries (a new Job, `-r<attempt>`), so that
    the bound and the backoff are the same as locally. Watching is a list of the dispatcher's
    Jobs by label at most once a second, which costs one API request however many Jobs run; a
    Job created after the list was taken is not in it, and is not taken for gone.
    """

    def __init__(self, namespace: str, template_file: Path, batch: Any = None) -> None:
        import yaml
        from kubernetes import client, config

        if batch is None:
            # The client's generated signatures want its model classes; plain dicts are what
            # the template is, and the API takes them as they are.
            kube_config: Any = config
            try:
                kube_config.load_incluster_config()
            except kube_config.ConfigException:
                kube_config.load_kube_config()
            batch = client.BatchV1Api()
        self._namespace = namespace
        self._template = yaml.safe_load(template_file.read_text())
        self._batch: Any = batch
        self._api_exception: type[Exception] = client.ApiException
        self._listed: tuple[float, list[Any]] | None = None
        self._launched: dict[str, float] = {}  # monotonic time of each create, by Job name

    def launch(self, order_id: str, order: DispatchedOrder, attempt: int) -> Maker:
        maker = Maker(maker_name(order_id, attempt), order_id, order, attempt, time.time_ns())
        self._launched[maker.name] = time.monotonic()
        try:
            self._batch.create_namespaced_job(self._namespace, job_manifest(self._template, maker))
        except self._api_exception as error:
            if (
                getattr(error, "status", None) != 409
            ):  # AlreadyExists: the same order's Job, created before
                raise LaunchFailed(f"cannot create Job {maker.name}: {error}") from error
        return maker

    def _jobs(self) -> list[Any]:
        # The dispatcher asks every 50 ms; the API is asked at most once a second.
        now = time.monotonic()
        if self._listed is None or now - self._listed[0] >= LIST_INTERVAL_S:
            selector = f"{COMPONENT_LABEL}={COMPONENT}"
            jobs = self._batch.list_namespaced_job(self._namespace, label_selector=selector)
            self._listed = (now, list(jobs.items))
        return self._listed[1]

    def ended(self, makers: list[Maker]) -> dict[str, Ended]:
        jobs = self._jobs()
        listed_at = self._listed[0] if self._listed is not None else 0.0
        by_name = {job.metadata.name: job for job in jobs}
        result: dict[str, Ended] = {}
        for maker in makers:
            job = by_name.get(maker.name)
            if job is None:
                if self._launched.get(maker.name, 0.0) >= listed_at:
                    continue  # created after the list was taken: not seen yet, not gone
                result[maker.name] = Ended.GONE  # deleted by someone else
            elif job.status.succeeded:
                result[maker.name] = Ended.MADE
            elif job.status.failed:
                result[maker.name] = Ended.FAILED
        return result

    def forget(self, maker: Maker) -> None:
        self._launched.pop(maker.name, None)
        try:
            self._batch.delete_namespaced_job(
                maker.name, self._namespace, propagation_policy="Background"
            )
        except self._api_exception as error:
            if getattr(error, "status", None) != 404:
                log.warning("could not delete Job %s: %s", maker.name, error)

    def recover(self) -> list[Maker]:
        makers = []
        for job in self._jobs():
            note = (job.metadata.annotations or {}).get(ORDER_ANNOTATION)
            if note is None:
                continue
            document = json.loads(note)
            makers.append(
                Maker(
                    name=job.metadata.name,
                    order_id=document["order_id"],
                    order=DispatchedOrder.model_validate(document["order"]),
                    attempt=int(document["attempt"]),
                    started_at_ns=time.time_ns(),
                )
            )
        return makers
