"""Chaos Toolkit actions on the local medpubsub system (`medpubsub up` or the pytest platform).

Each function's signature is the contract of an experiment's `provider.arguments`; `state_file`
is where the system describes itself (default `.medpubsub/local.json`, or `MEDPUBSUB_STATE_FILE`).
Faults are SIGKILLs, as a crashing pod or a node losing power would deliver them: nothing gets to
clean up, which is what exactly-once delivery has to survive. The system heals itself as
Kubernetes would: the ScaledJob controller starts new makers for the lag, the platform restarts a
dead broker on its data dir; `wait_for_broker` waits for the latter.
"""

# No `from __future__ import annotations`: Chaos Toolkit reads these signatures at runtime
# (`chaos validate`, discovery) and reports real types only for evaluated annotations.

import atexit
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub.chaos.target import (
    BROKER_MARKERS,
    MAKER_MARKERS,
    NotApplicable,
    kafka_settings,
    local_state,
    logger,
    runs,
    state_path,
)
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.load import LocustProcess
from pytest_medpubsub.state import LocalState, ProcessInfo, default_path
from pytest_medpubsub.waiting import wait_until

__all__ = ["kill_broker", "kill_makers", "start_load", "stop_load", "wait_for_broker"]


def kill_makers(
    count: int = 1,
    mid_order: bool = True,
    wait_s: float = 20.0,
    state_file: str | None = None,
) -> list[str]:
    """SIGKILL up to `count` running medicine makers; returns `name (pid N)` of each one killed.

    `count`: how many makers to kill at once (fewer when fewer qualify).
    `mid_order`: only kill makers that own a partition of the orders topic holding an order not
    made yet (its offset is uncommitted), i.e. makers in the middle of an order or about to take
    one: killing those leaves an open transaction behind, the case exactly-once has to survive.
    The ScaledJob keeps idle makers in reserve, so a maker picked blindly is usually idle. Without
    it, any running maker qualifies. The youngest qualifying makers are killed first.
    `wait_s`: how long to wait for a maker to qualify (makers come and go with the orders).
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    current = local_state(state_file)  # no system at all is an error now, not after `wait_s`
    # Which maker is busy is read from the group as KEDA reads it.
    kafka = kafka_settings(None, state_file, identity="keda")
    group = _Group(kafka, current.group_id) if mid_order else None

    def candidates() -> list[ProcessInfo]:
        makers = [m for m in local_state(state_file).makers if _runs_a_maker(m.pid)]
        if group is not None:
            busy = group.busy_pids()
            # A dispatched maker (the dispatcher design) exists only for its order: always busy.
            makers = [m for m in makers if m.pid in busy or runs(m.pid, *DISPATCHED_MARKERS)]
        return sorted(makers, key=lambda maker: -maker.started_at_ns)

    describe = "a maker in the middle of an order" if mid_order else "a running maker"
    try:
        found = wait_until(
            candidates, bool, wait_s, f"{describe} in {_where(state_file)}", interval_s=0.1
        )
    finally:
        if group is not None:
            group.close()
    killed = []
    for maker in found[:count]:
        if _runs_a_maker(maker.pid):  # checked again right before the signal
            os.kill(maker.pid, signal.SIGKILL)
            killed.append(f"{maker.name} (pid {maker.pid})")
    logger.info("killed makers: %s", ", ".join(killed) or "none (they had just finished)")
    return killed


# `medpubsub make-order`: a maker the dispatcher started for one order.
DISPATCHED_MARKERS = ("medpubsub", "make-order")


def _runs_a_maker(pid: int) -> bool:
    return runs(pid, *MAKER_MARKERS) or runs(pid, *DISPATCHED_MARKERS)


class _Group:
    """Which makers own an order not made yet, from the makers' group as Kafka sees it.

    A maker's Kafka client id is `<host>-<pid>` on this machine (`maker_name`), so the members
    of the group description map to the pids of the state file. Committed offsets are read
    through a consumer of the group that never joins it: the admin API for them crashes on a
    restarted broker's NOT_COORDINATOR (librdkafka #5040).
    """

    def __init__(self, kafka: KafkaSettings, group: str):
        self.kafka = kafka
        self.group = group
        config = quiet(common_config(kafka, "medpubsub-chaos"))
        self._admin = AdminClient(config)
        self._offsets = Consumer(config | {"group.id": group, "enable.auto.commit": False})

    def busy_pids(self) -> set[int]:
        topic = self.kafka.orders_topic
        description = self._admin.describe_consumer_groups([self.group], request_timeout=5)[
            self.group
        ].result()
        metadata = self._admin.list_topics(topic=topic, timeout=5).topics[topic]
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        committed = {tp.partition: tp.offset for tp in self._offsets.committed(partitions, 5)}
        waiting = {
            tp.partition
            for tp in partitions
            if self._offsets.get_watermark_offsets(tp, timeout=5)[1]
            > max(committed.get(tp.partition, 0), 0)
        }
        return {
            _pid_of(member.client_id)
            for member in description.members
            if any(tp.partition in waiting for tp in member.assignment.topic_partitions)
        }

    def close(self) -> None:
        self._offsets.close()


def _pid_of(client_id: str) -> int:
    """The pid in a local maker's client id, `<host>-<pid>-<token>` (`maker_name`), or
    `<host>-<pid>` as makers named themselves before; -1 when there is none."""
    parts = client_id.split("-")
    if len(parts) >= 3 and parts[-2].isdigit():
        return int(parts[-2])
    return int(parts[-1]) if len(parts) >= 2 and parts[-1].isdigit() else -1


def kill_broker(state_file: str | None = None) -> dict[str, Any]:
    """SIGKILL the local system's embedded Kafka broker; returns its pid and when it died.

    The platform that owns the broker starts it again on the same data dir and port within a few
    seconds, as Kubernetes restarts a broker pod; `wait_for_broker` waits for that. Raises when
    the system uses an external broker (`medpubsub up --kafka`), which is not ours to kill.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    current = local_state(state_file)
    broker = current.broker
    if broker is None:
        raise NotApplicable(
            f"the local system uses an external broker at {current.bootstrap}; kill_broker only "
            "kills the embedded one"
        )
    if not runs(broker.pid, *BROKER_MARKERS):
        raise NotApplicable(
            f"pid {broker.pid} from {_where(state_file)} is not a running Kafka broker (it may be "
            "restarting already); try again once wait_for_broker has returned"
        )
    os.kill(broker.pid, signal.SIGKILL)
    killed_at_ns = time.time_ns()
    logger.info("killed the broker (pid %s) serving %s", broker.pid, current.bootstrap)
    return {
        "pid": broker.pid,
        "bootstrap": current.bootstrap,
        "data_dir": current.kafka_data_dir,
        "killed_at_ns": killed_at_ns,
    }


def wait_for_broker(
    timeout_s: float = 120.0,
    state_file: str | None = None,
    bootstrap: str | None = None,
    after_a_kill: bool = False,
) -> float:
    """Wait until Kafka serves the orders topic again; returns how many seconds that took.

    Serving means a metadata request is answered and every partition of the orders topic has a
    leader, so producers can be acknowledged and makers can commit again.
    `timeout_s`: how long to wait before failing the activity (with what was seen last).
    `state_file`: the local system's state file; its broker must also be running again.
    `bootstrap`: wait for this Kafka instead (e.g. a cluster's external listener); then no
    state file is read.
    `after_a_kill`: first wait until the broker stops answering. A broker pod deleted with no
    grace period still serves for up to the kubelet's minimum grace period (2 s): taken for the
    restarted broker, it let an experiment go on 0.4 s after the kill, and its hypothesis then
    met a broker that was down.
    """
    started = time.monotonic()
    kafka = kafka_settings(bootstrap, state_file, identity="keda")
    admins: list[AdminClient] = []  # made once the port answers: no log of refused connections
    host, _, port = kafka.kafka_bootstrap.split(",")[0].rpartition(":")
    address = (host, int(port))

    if after_a_kill:
        wait_until(
            lambda: _answers(address),
            lambda answers: not answers,
            timeout_s,
            f"Kafka at {kafka.kafka_bootstrap} to stop answering after the kill",
            interval_s=0.1,
        )

    def serving() -> str:
        if not bootstrap:
            current: LocalState = local_state(state_file)
            if current.broker is not None and not runs(current.broker.pid, *BROKER_MARKERS):
                return f"broker pid {current.broker.pid} is not running yet"
        with socket.create_connection(address, timeout=1):
            pass
        if not admins:
            admins.append(_admin(kafka))
        return _orders_topic_state(admins[0], kafka)

    wait_until(
        serving,
        lambda seen: seen == "serving",
        timeout_s,
        f"Kafka at {kafka.kafka_bootstrap} to serve {kafka.orders_topic}",
        interval_s=0.2,
    )
    elapsed = round(time.monotonic() - started, 2)
    logger.info("Kafka at %s serves again after %.1f s", kafka.kafka_bootstrap, elapsed)
    return elapsed


def _answers(address: tuple[str, int]) -> bool:
    """Whether something accepts connections at (host, port) within a second."""
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def _admin(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(quiet(common_config(kafka, "medpubsub-chaos")))


def _orders_topic_state(admin: AdminClient, kafka: KafkaSettings) -> str:
    metadata = admin.list_topics(topic=kafka.orders_topic, timeout=2)
    topic = metadata.topics.get(kafka.orders_topic)
    if topic is None or topic.error is not None:
        return f"{kafka.orders_topic}: {topic.error if topic else 'unknown topic'}"
    leaderless = [p for p, info in topic.partitions.items() if info.leader < 0]
    if not topic.partitions or leaderless:
        return f"{kafka.orders_topic}: {len(leaderless)} partitions without a leader"
    return "serving"


# -- load -----------------------------------------------------------------------------------------

# One load per process: `chaos run` is one process, and so is a pytest session.
_load: list[LocustProcess] = []


def start_load(
    ramp: str = "3x120,0x5",
    out_dir: str | None = None,
    min_acks: int = 3,
    timeout_s: float = 60.0,
    state_file: str | None = None,
) -> dict[str, Any]:
    """Start Locust patients (`load/patients.py`) in the background against the local system.

    Returns once the patients had `min_acks` orders acknowledged, so that the faults that follow
    hit a loaded system. `stop_load` ends the run (put it in the rollbacks: they always run).
    `ramp`: the patients' steps, patients x seconds (see `MEDPUBSUB_RAMP`); the run ends on its
    own after the last step at the latest.
    `out_dir`: where Locust's CSV, HTML, log and acknowledged order ids go (default
    `.medpubsub/chaos-load` next to the state file).
    `min_acks`: acknowledged orders to wait for before returning.
    `timeout_s`: how long to wait for them.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    if _load and _load[0].running():
        raise RuntimeError(f"a load is already running (pid {_load[0].pid}); call stop_load first")
    kafka = kafka_settings(None, state_file, identity="patient")
    directory = Path(out_dir) if out_dir else _default_load_dir(state_file)
    load = LocustProcess(kafka, ramp, directory, patient_prefix="chaos-patient")
    _load[:] = [load.start()]
    acknowledged = load.wait_for_acknowledgements(min_acks, timeout_s)
    return {"pid": load.pid, "ramp": load.ramp, "out_dir": str(load.out_dir), "acks": acknowledged}


def stop_load(timeout_s: float = 40.0) -> dict[str, Any]:
    """Stop the Locust patients of `start_load` and return their figures (orders produced,
    failed deliveries, acknowledgement latency percentiles in ms, exit status).

    The patients stop as at the end of a ramp: their last orders are still acknowledged.
    `timeout_s`: how long they may take before they are stopped by pid (SIGTERM, then SIGKILL).
    Returns `{"running": False}` when no load was started (rollbacks may run after a failure).
    """
    if not _load:
        return {"running": False}
    load = _load.pop()
    result = load.stop(grace_s=timeout_s)
    return result.to_report() | {"passed": result.passed}


def _default_load_dir(state_file: str | None) -> Path:
    return (state_path(state_file) or default_path()).parent / "chaos-load"


def _where(state_file: str | None) -> str:
    return str(state_path(state_file) or default_path())


@atexit.register
def _never_leave_load_behind() -> None:
    for load in _load:
        load.kill()
