"""A local platform whose start fails stops everything it started before it raises: no thread,
no process (maker, dispatcher, a maker the dispatcher started) is left behind, and the caller
sees a `PlatformError` that says what was awaited and what was seen last.

The start is made to fail the way a starved machine makes it fail: the makers do not own the
partitions within the platform's timeout (here shortened to a moment)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs, leftovers, processes
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.platforms import local, local_dispatcher
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.platforms.local import LocalPlatform
from pytest_medpubsub.platforms.local_dispatcher import LocalDispatcherPlatform
from pytest_medpubsub.platforms.local_system import LocalRun
from pytest_medpubsub.waiting import wait_until
from tests.conftest import PROJECT


def own_group_manifest(directory: Path) -> Path:
    """The project's ScaledJob with a consumer group of its own: the warm makers this test
    starts must not join the group of the session's platform."""
    document = yaml.safe_load((PROJECT / "keda/medicine-scaledjob.yaml").read_text())
    group = "start-failure"
    document["spec"]["triggers"][0]["metadata"]["consumerGroup"] = group
    container = document["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]
    for variable in container["env"]:
        if variable["name"] == "MEDICINE_GROUP_ID":
            variable["value"] = group
    path = directory / "scaledjob.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def nothing_left(medpubsub_kafka: str) -> Iterator[None]:
    """Assert, after the test, that no thread and no process of the run started during it is
    still alive (the processes are awaited briefly: SIGTERM takes a moment to end one).

    The session's broker is up before the count starts, and only this process's descendants
    count: under pytest-xdist, the other workers start processes of the same run meanwhile."""
    threads_before = set(threading.enumerate())
    started_at = time.time()
    yield

    def new_processes() -> list[str]:
        found = []
        ours = {child.pid for child in psutil.Process().children(recursive=True)}
        for pid, command in leftovers.leftovers(processes.run_id()):
            if pid not in ours:
                continue
            try:
                if psutil.Process(pid).create_time() >= started_at - 1:
                    found.append(f"{pid}: {command[:120]}")
            except psutil.NoSuchProcess:
                continue
        return found

    wait_until(new_processes, lambda found: found == [], 30, "no process started by the test")
    left = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert left == []


def start_failing(platform: LocalPlatform | LocalDispatcherPlatform, match: str) -> None:
    """Start `platform`, which must fail saying `match`; one that came up is stopped (a test
    that fails must not leave its makers running)."""
    try:
        with pytest.raises(PlatformError, match=match):
            platform.start()
    except BaseException:
        platform.stop()
        raise


@pytest.mark.usefixtures("nothing_left")
def test_warm_makers_that_time_out_leave_nothing_behind(
    medpubsub_kafka: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "WARM_MAKERS_TIMEOUT_S", 0.2)
    platform = LocalPlatform(
        LocalRun(
            KafkaSettings(kafka_bootstrap=medpubsub_kafka),
            tmp_path / "run",
            state_file=tmp_path / "local.json",
        ),
        scaledjob_manifest=own_group_manifest(tmp_path),
    )
    start_failing(platform, r"waited 0.2 s for 2 warm maker\(s\).*last saw")
    assert not (tmp_path / "local.json").exists()


@pytest.mark.usefixtures("nothing_left")
def test_a_dispatcher_that_is_not_ready_in_time_leaves_nothing_behind(
    medpubsub_kafka: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if request.config.getoption("--medpubsub-design") == designs.dispatcher.NAME:
        pytest.skip("the session's own platform uses the dispatcher's group")
    monkeypatch.setattr(local_dispatcher, "DISPATCHER_READY_TIMEOUT_S", 0.2)
    # A warm dispatcher owns the partitions within 0.4 s, so the timeout alone would race it:
    # the platform's view of the group is held at "nobody" (a group no one joins), as a starved
    # machine holds it, while the real dispatcher runs.
    monkeypatch.setattr(
        local_dispatcher,
        "group_assignment",
        lambda kafka, _group, topic: group_assignment(kafka, "a-group-nobody-joins", topic),
    )
    platform = LocalDispatcherPlatform(
        LocalRun(KafkaSettings(kafka_bootstrap=medpubsub_kafka), tmp_path / "run")
    )
    start_failing(platform, "the dispatcher owning every partition")
    assert platform.dispatcher_pid is None
