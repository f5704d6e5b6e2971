"""What the test modules share: the project's root, the offline k8s renders and CRDs, and the
`kafka` marker.

The marker is set here, from the fixtures a test asks for, rather than by hand in every module:
a test that needs the embedded broker (directly or through the running system) is `kafka`, and
`make check` (`-m "not kafka"`) leaves exactly those out. A marker written by hand would be
forgotten on the next such test and make the fast tier slow again.

`latency` is set the same way on a test that runs the whole system (`medpubsub_system`): its SLOs
bound latency, so `make test` runs these one at a time, after the others ran side by side. A
sub-session whose inner run must meet latency SLOs is marked by hand.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from pytest_medpubsub import processes
from pytest_medpubsub.k8s.check import crd_schemas
from pytest_medpubsub.k8s.crds import CrdsUnavailable
from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, load_documents
from pytest_medpubsub.k8s.render import (
    OVERLAYS_DIR,
    RenderError,
    kustomize_command,
    overlays,
    render,
)
from pytest_medpubsub.k8s.schemas import CrdSchemas
from pytest_medpubsub.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[1]

KAFKA_FIXTURES = frozenset(
    {
        "medpubsub_kafka",
        "medpubsub_system",
        "medpubsub_platform",
        # Brokers of a module's own (another address, security, or a sub-session's).
        "private_kafka",
        "secure_broker",
        "broker_on_the_host_address",
        "own_address",
        "own_broker",
    }
)
"""Fixtures that start an embedded broker (or stand on one); a test that starts one in its body
is marked `kafka` by hand."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if KAFKA_FIXTURES & fixtures:
            item.add_marker(pytest.mark.kafka)
        if "medpubsub_system" in fixtures:
            item.add_marker(pytest.mark.latency)


def require_kustomize() -> None:
    """Skip, saying why, when neither kubectl nor kustomize can render an overlay."""
    try:
        kustomize_command()
    except RenderError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def renders() -> dict[str, list[Manifest]]:
    """Every overlay of k8s/overlays rendered once for the session, by overlay name.

    Tests that break a render on purpose take a `copy.deepcopy` of one.
    """
    require_kustomize()
    return {
        overlay: load_documents(render(PROJECT / OVERLAYS_DIR / overlay))
        for overlay in overlays(PROJECT)
    }


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    """The pinned Strimzi and KEDA CRDs' validators (fetched into the user cache once)."""
    try:
        return crd_schemas()
    except CrdsUnavailable as error:
        pytest.skip(f"Strimzi and KEDA objects are not schema-checked: {error}")


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The object of `kind` named `name` in a render."""
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def rule_hit(findings: list[Finding], obj: str, rule: str) -> Finding:
    """The finding for `obj` and `rule`; its text names both, as a reader sees it."""
    hits = [f for f in findings if f.object == obj and f.rule == rule]
    assert hits, f"no {rule} finding for {obj}; got: {[str(f) for f in findings]}"
    assert obj in str(hits[0])
    assert rule in str(hits[0])
    return hits[0]


def wait_for_exec(
    process: subprocess.Popen[bytes], args: Sequence[str], timeout_s: float = 30
) -> None:
    """Until /proc shows `args` as the command line of `process`.

    Right after the fork, and until the child has exec'd, /proc/<pid>/cmdline is still the
    parent's: a test that looks at a process it has just started (as chaos and leftovers do)
    must wait for this first, or it races the child on a busy machine.
    """
    wait_until(
        lambda: processes.command_line(process.pid),
        lambda seen: seen == list(args),
        timeout_s,
        f"pid {process.pid} to run {list(args)}",
        interval_s=0.02,
    )


Spawn = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def spawned() -> Iterator[Spawn]:
    """`spawned(*arguments, env=None)`: a Python that sleeps, with `arguments` on its command
    line (to look like a service), returned once it runs; all stopped by pid afterwards.

    With `env` the process is started with exactly that environment (no run id unless given),
    as a process started outside the harness would be.
    """
    started: list[subprocess.Popen[bytes]] = []

    def spawn(*arguments: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-c", "import time; time.sleep(120)", *arguments]
        if env is None:
            process = processes.spawn(args, cwd=PROJECT)
        else:
            process = subprocess.Popen(args, env=dict(env), cwd=PROJECT, start_new_session=True)
        started.append(process)
        wait_for_exec(process, args)
        return process

    yield spawn
    processes.stop_all(started, grace_s=5)
