"""The Chaos Toolkit extension pytest_medpubsub.chaos: discovery, and the actions' safety.

Faults are SIGKILLs at pids read from a state file, so the important property is what they do
*not* kill. The state files here are real ones (written by `state.write`, owned by this process)
describing processes this test starts; the real local system is killed in the scenarios.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import state
from pytest_medpubsub.chaos import actions, discover, dispatcher, probes
from pytest_medpubsub.chaos.actions import _pid_of
from pytest_medpubsub.chaos.target import NotApplicable
from pytest_medpubsub.kafka.topics import TopicSpec, ensure_topics
from pytest_medpubsub.waiting import WaitTimeout

EXPORTED: list[Callable[..., Any]] = [
    *(getattr(actions, name) for name in actions.__all__),
    *(getattr(dispatcher, name) for name in dispatcher.__all__),
    *(getattr(probes, name) for name in probes.__all__),
]


def test_discovery_lists_every_action_and_probe_with_its_arguments() -> None:
    discovery = discover(discover_system=False)
    found = {(activity["type"], activity["name"]) for activity in discovery["activities"]}
    assert found == {
        ("action", "kill_makers"),
        ("action", "kill_broker"),
        ("action", "wait_for_broker"),
        ("action", "start_load"),
        ("action", "stop_load"),
        ("action", "kill_dispatcher"),
        ("action", "wait_for_dispatcher"),
        ("probe", "orders_delivered_within"),
        ("probe", "no_lost_orders"),
        ("probe", "no_duplicate_tabs"),
        ("probe", "makers_scaled_in"),
    }
    kill_makers = next(a for a in discovery["activities"] if a["name"] == "kill_makers")
    assert kill_makers["mod"] == "pytest_medpubsub.chaos.actions"
    assert {"name": "count", "default": 1, "type": "integer"} in kill_makers["arguments"]
    assert discovery["extension"]["name"] == "medpubsub"


@pytest.mark.parametrize("function", EXPORTED, ids=lambda function: function.__name__)
def test_every_argument_is_explained_in_the_docstring(function: Callable[..., Any]) -> None:
    doc = inspect.getdoc(function) or ""
    for name in inspect.signature(function).parameters:
        assert f"`{name}`" in doc, f"{function.__name__}: `{name}` is not explained"


def test_chaos_discover_finds_the_extension_by_its_distribution(tmp_path: Path) -> None:
    target = tmp_path / "discovery.json"
    chaos = Path(sys.executable).with_name("chaos")
    finished = subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "discover", "--no-install",
         "--no-system-info", "--discovery-path", str(target), "medpubsub"],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout + finished.stderr
    discovery = json.loads(target.read_text())
    assert {activity["name"] for activity in discovery["activities"]} == {
        function.__name__ for function in EXPORTED
    }
    assert discovery["extension"]["name"] == "medpubsub"
    assert discovery["system"] is None


# -- the actions' safety --------------------------------------------------------------------------


def write_state(
    path: Path,
    makers: Sequence[subprocess.Popen[bytes]] = (),
    broker: subprocess.Popen[bytes] | None = None,
    age_s: float = 5.0,
    updated_ago_s: float = 0.0,
    *,
    warm_makers: int = 0,
) -> str:
    """A state file owned by this process, describing the given processes."""
    now = time.time_ns()
    started = now - int(age_s * 1e9)
    state.write(
        state.LocalState(
            owner_pid=os.getpid(),
            bootstrap="127.0.0.1:9",
            group_id="medicine",
            orders_topic="tabs.orders",
            deliveries_topic="tabs.deliveries",
            dlq_topic="tabs.dlq",
            broker=None
            if broker is None
            else state.ProcessInfo(name="kafka", pid=broker.pid, started_at_ns=0),
            kafka_data_dir=None,
            patients=[],
            makers=[
                state.ProcessInfo(name=f"medicine-{n:05d}", pid=p.pid, started_at_ns=started)
                for n, p in enumerate(makers, start=1)
            ],
            warm_makers=warm_makers,
            updated_at_ns=now - int(updated_ago_s * 1e9),
        ),
        path,
    )
    return str(path)


def test_kill_makers_kills_makers_only(
    tmp_path: Path, spawned: Callable[..., subprocess.Popen[bytes]]
) -> None:
    maker = spawned("medpubsub", "medicine")  # looks like `python -m medpubsub medicine`
    impostor = spawned("something", "else")  # a pid that was reused by another program
    state_file = write_state(tmp_path / "local.json", makers=[impostor, maker])

    killed = actions.kill_makers(count=2, mid_order=False, wait_s=5, state_file=state_file)

    assert killed == [f"medicine-00002 (pid {maker.pid})"]
    assert maker.wait(timeout=10) == -9
    assert impostor.poll() is None


def test_kill_makers_waits_for_a_maker_and_says_what_it_saw(tmp_path: Path) -> None:
    state_file = write_state(tmp_path / "local.json", makers=[])

    with pytest.raises(WaitTimeout, match=r"a running maker in .*; last saw \[\]"):
        actions.kill_makers(mid_order=False, wait_s=0.5, state_file=state_file)


def test_the_pid_of_a_local_makers_client_id() -> None:
    assert _pid_of("vm-30240") == 30240
    assert _pid_of("vm-30240-a1b2c3") == 30240  # maker_name: host, pid, random token
    assert _pid_of("my-vm-30240-123456") == 30240
    assert _pid_of("medicine-abc") == -1


def test_kill_broker_kills_only_a_kafka_broker(
    tmp_path: Path, spawned: Callable[..., subprocess.Popen[bytes]]
) -> None:
    not_kafka = spawned("medpubsub", "patient")
    with pytest.raises(NotApplicable, match="is not a running Kafka broker"):
        actions.kill_broker(write_state(tmp_path / "a.json", broker=not_kafka))
    assert not_kafka.poll() is None

    with pytest.raises(NotApplicable, match=re.escape("uses an external broker at 127.0.0.1:9")):
        actions.kill_broker(write_state(tmp_path / "b.json"))

    broker = spawned("kafka.Kafka", "server.properties")
    killed = actions.kill_broker(write_state(tmp_path / "c.json", broker=broker))
    assert killed["pid"] == broker.pid
    assert broker.wait(timeout=10) == -9


def test_kill_dispatcher_kills_the_dispatcher_not_a_load_whose_paths_name_it(
    tmp_path: Path, spawned: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # Locust in a checkout named medpubsub, writing into the dispatcher design's report folder:
    # both words are in its command line, inside one path.
    locust = spawned("--csv", "/home/me/medpubsub/build/report/dispatcher/chaos-load/locust")
    state_file = write_state(tmp_path / "local.json")
    # While the killed dispatcher is being started again, no process is the dispatcher.
    with pytest.raises(NotApplicable, match="runs no dispatcher"):
        dispatcher.kill_dispatcher(state_file)

    restarted = spawned("medpubsub", "dispatcher")  # looks like `python -m medpubsub dispatcher`
    killed = dispatcher.kill_dispatcher(state_file)
    assert killed["pid"] == restarted.pid
    assert restarted.wait(timeout=10) == -9
    assert locust.poll() is None


def test_without_a_running_system_the_actions_say_so(tmp_path: Path) -> None:
    with pytest.raises(state.NoLocalSystem, match="start one with `medpubsub up`"):
        actions.kill_broker(str(tmp_path / "missing.json"))
    stale = write_state(tmp_path / "stale.json", updated_ago_s=60)
    with pytest.raises(state.NoLocalSystem, match="no longer keeps it up to date"):
        actions.kill_makers(state_file=stale, wait_s=0)


def test_stop_load_without_a_load_is_a_no_op() -> None:
    assert actions.stop_load() == {"running": False}


# -- against the session's broker -----------------------------------------------------------------


@pytest.fixture
def empty_topics(medpubsub_kafka: str, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """Three new, empty topics, named in the environment so that `bootstrap=` probes use them."""
    prefix = f"chaos-test.{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(
        kafka_bootstrap=medpubsub_kafka,
        orders_topic=f"{prefix}.orders",
        deliveries_topic=f"{prefix}.deliveries",
        dlq_topic=f"{prefix}.dlq",
    )
    topics = (kafka.orders_topic, kafka.deliveries_topic, kafka.dlq_topic)
    ensure_topics(kafka, [TopicSpec(name, 1) for name in topics])
    monkeypatch.setenv("MEDPUBSUB_ORDERS_TOPIC", kafka.orders_topic)
    monkeypatch.setenv("MEDPUBSUB_DELIVERIES_TOPIC", kafka.deliveries_topic)
    monkeypatch.setenv("MEDPUBSUB_DLQ_TOPIC", kafka.dlq_topic)
    return kafka


def test_probes_on_a_system_without_orders(empty_topics: KafkaSettings) -> None:
    bootstrap = empty_topics.kafka_bootstrap
    assert probes.no_lost_orders(window_s=60, settle_s=1, bootstrap=bootstrap)
    assert probes.no_duplicate_tabs(window_s=60, bootstrap=bootstrap)
    # No order in the window proves nothing about latency: not a steady state.
    assert not probes.orders_delivered_within(latency_s=1, window_s=0.5, bootstrap=bootstrap)


def test_wait_for_broker_returns_once_the_orders_topic_has_leaders(
    empty_topics: KafkaSettings,
) -> None:
    seconds = actions.wait_for_broker(timeout_s=30, bootstrap=empty_topics.kafka_bootstrap)
    assert 0 <= seconds < 30


def test_after_a_kill_a_broker_that_still_answers_is_not_taken_for_the_restarted_one(
    empty_topics: KafkaSettings,
) -> None:
    # The broker serves all along, as a deleted pod does for its last seconds: without
    # `after_a_kill` the wait returns at once (the test above), with it the wait is for the kill.
    with pytest.raises(WaitTimeout, match="to stop answering after the kill; last saw True"):
        actions.wait_for_broker(
            timeout_s=1, bootstrap=empty_topics.kafka_bootstrap, after_a_kill=True
        )


def test_wait_for_broker_says_what_it_saw_last(tmp_path: Path) -> None:
    with pytest.raises(WaitTimeout, match="ConnectionRefusedError"):
        actions.wait_for_broker(timeout_s=0.5, bootstrap="127.0.0.1:9")


def test_makers_scaled_in_follows_the_state_file_down_to_the_warm_floor(
    tmp_path: Path, spawned: Callable[..., subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "local.json"
    makers = [spawned("medpubsub", "medicine"), spawned("medpubsub", "medicine")]
    write_state(path, makers=makers)
    assert not probes.makers_scaled_in(timeout_s=0.5, state_file=str(path))
    write_state(path, makers=makers, warm_makers=2)  # the two are the warm floor
    assert probes.makers_scaled_in(timeout_s=5, state_file=str(path))
    write_state(path, makers=makers[:1])
    assert not probes.makers_scaled_in(timeout_s=0.5, state_file=str(path))
    write_state(path)
    assert probes.makers_scaled_in(timeout_s=5, state_file=str(path))
    assert all(maker.poll() is None for maker in makers)  # a probe only looks
