"""The dispatcher design's pure parts: the order a maker is handed, the Job made for it, the
design switch, and the bench design."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from medpubsub.dispatcher import launchers
from medpubsub.dispatcher.launchers import (
    COMPONENT,
    COMPONENT_LABEL,
    ORDER_ANNOTATION,
    Ended,
    JobLauncher,
    Maker,
    job_manifest,
    maker_name,
)
from medpubsub.medicine.one_order import (
    ORDER_VARIABLE,
    DispatchedOrder,
    dispatched_order,
    marker_group,
)
from medpubsub.messages import Order
from medpubsub.settings import ConfigError, KafkaSettings
from pytest_medpubsub.bench.designs import DESIGNS
from pytest_medpubsub.platforms import factory
from pytest_medpubsub.platforms.base import PlatformUnavailable
from pytest_medpubsub.platforms.local_dispatcher import LocalDispatcherPlatform
from pytest_medpubsub.project import project_dir

JOB_TEMPLATE = project_dir() / "k8s" / "components" / "dispatcher" / "dispatched-job.yaml"


def an_order() -> Order:
    return Order(
        order_id=str(uuid.uuid4()), patient_id="p", tabs_count=4, ordered_at_ns=time.time_ns()
    )


def a_dispatched_order(order: Order) -> DispatchedOrder:
    return DispatchedOrder(
        topic="tabs.orders", partition=7, offset=41, value=order.to_bytes().decode(), key="p"
    )


def test_the_dispatched_order_is_the_record_a_consumer_would_have_polled() -> None:
    order = an_order()
    dispatched = dispatched_order({ORDER_VARIABLE: a_dispatched_order(order).model_dump_json()})
    record = dispatched.record()

    assert (record.topic(), record.partition(), record.offset()) == ("tabs.orders", 7, 41)
    assert record.value() == order.to_bytes()
    assert record.key() == b"p"
    assert dispatched.order() == order
    assert marker_group(order.order_id) == f"medicine-order-{order.order_id}"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "MEDICINE_ORDER is not set"),
        ({ORDER_VARIABLE: "{"}, "MEDICINE_ORDER is invalid"),
        ({ORDER_VARIABLE: '{"topic": "t", "partition": 0, "offset": -1, "value": "{}"}'}, "offset"),
    ],
)
def test_a_missing_or_malformed_order_is_one_sentence(
    environment: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        dispatched_order(environment)


def test_an_order_that_is_no_order_is_a_configuration_error() -> None:
    dispatched = DispatchedOrder(topic="t", partition=0, offset=0, value='{"tabs_count": 99}')
    with pytest.raises(ConfigError, match="holds no valid order"):
        dispatched.order()


def test_makers_are_named_from_the_order_id_and_fit_a_kubernetes_name() -> None:
    order_id = str(uuid.uuid4())
    assert maker_name(order_id, 1) == f"maker-{order_id}"
    assert maker_name(order_id, 5) == f"maker-{order_id}-r5"
    assert len(maker_name(order_id, 20)) <= 63


def test_the_job_is_the_hardened_template_with_the_order_in_its_environment() -> None:
    template = yaml.safe_load(JOB_TEMPLATE.read_text())
    original = json.dumps(template, sort_keys=True)
    order = an_order()
    maker = Maker(maker_name(order.order_id, 2), order.order_id, a_dispatched_order(order), 2, 0)
    job = job_manifest(template, maker)

    assert json.dumps(template, sort_keys=True) == original  # the template is not changed
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == f"maker-{order.order_id}-r2"
    assert job["metadata"]["labels"][COMPONENT_LABEL] == COMPONENT
    assert job["spec"]["template"]["metadata"]["labels"][COMPONENT_LABEL] == COMPONENT
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry["value"] for entry in container["env"]}
    assert DispatchedOrder.model_validate_json(env[ORDER_VARIABLE]) == maker.order
    note = json.loads(job["metadata"]["annotations"][ORDER_ANNOTATION])
    assert (note["order_id"], note["attempt"]) == (order.order_id, 2)
    assert job["spec"]["backoffLimit"] == 0  # the dispatcher retries, bounded, with backoff
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


class Jobs:
    """The batch API as the Job launcher uses it: Jobs by name, listed as the API lists them."""

    def __init__(self) -> None:
        self.jobs: dict[str, SimpleNamespace] = {}
        self.lists = 0

    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.jobs[name] = SimpleNamespace(
            metadata=SimpleNamespace(name=name, annotations=body["metadata"]["annotations"]),
            status=SimpleNamespace(succeeded=None, failed=None),
        )

    def list_namespaced_job(self, namespace: str, label_selector: str) -> SimpleNamespace:
        self.lists += 1
        return SimpleNamespace(items=list(self.jobs.values()))

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        self.jobs.pop(name, None)


def test_a_job_created_after_the_last_list_is_not_taken_for_gone() -> None:
    api = Jobs()
    launcher = JobLauncher("medpubsub", JOB_TEMPLATE, batch=api)
    assert launcher.ended([]) == {}  # the list is taken (and kept for a second)
    order = an_order()
    maker = launcher.launch(order.order_id, a_dispatched_order(order), 1)
    # The kept list predates the Job: "not listed" means "not seen yet". Taken for gone, the
    # dispatcher would delete the Job it just made and make it again, over and over.
    assert launcher.ended([maker]) == {}
    assert api.lists == 1
    assert maker.name in api.jobs


def test_the_job_launcher_tells_made_failed_and_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launchers, "LIST_INTERVAL_S", 0.0)  # a fresh list at every call
    api = Jobs()
    launcher = JobLauncher("medpubsub", JOB_TEMPLATE, batch=api)
    made, failed, gone, running = (
        launcher.launch(o.order_id, a_dispatched_order(o), 1)
        for o in (an_order(), an_order(), an_order(), an_order())
    )
    api.jobs[made.name].status.succeeded = 1
    api.jobs[failed.name].status.failed = 1
    del api.jobs[gone.name]  # deleted by someone else
    assert launcher.ended([made, failed, gone, running]) == {
        made.name: Ended.MADE,
        failed.name: Ended.FAILED,
        gone.name: Ended.GONE,
    }
    launcher.forget(made)
    assert made.name not in api.jobs
    assert {m.name for m in launcher.recover()} == {failed.name, running.name}


def test_the_design_switch_picks_the_local_platform(tmp_path: Path) -> None:
    kafka = KafkaSettings()
    options = factory.PlatformOptions(
        cluster="local", run_dir=tmp_path, report_dir=tmp_path, design="dispatcher"
    )
    platform = factory.create_local(options, kafka, None)
    assert isinstance(platform, LocalDispatcherPlatform)
    assert platform.warm_makers() == 0
    scaledjob = factory.create_local(
        factory.PlatformOptions(cluster="local", run_dir=tmp_path, report_dir=tmp_path),
        kafka,
        None,
    )
    assert not isinstance(scaledjob, LocalDispatcherPlatform)
    with pytest.raises(PlatformUnavailable, match="unknown design"):
        factory.create_local(
            factory.PlatformOptions(
                cluster="local", run_dir=tmp_path, report_dir=tmp_path, design="keda"
            ),
            kafka,
            None,
        )


def test_the_bench_runs_the_dispatcher_on_its_own_platform() -> None:
    assert DESIGNS["dispatcher"].platform == "dispatcher"
    assert {design.platform for name, design in DESIGNS.items() if name != "dispatcher"} == {
        "scaledjob"
    }


def test_an_unknown_design_on_a_cluster_is_refused_in_one_sentence(tmp_path: Path) -> None:
    options = factory.PlatformOptions(
        cluster="kind", run_dir=tmp_path, report_dir=tmp_path, design="keda"
    )
    with pytest.raises(PlatformUnavailable, match="unknown design 'keda'") as refused:
        factory.check_available(options, project_dir())
    assert str(refused.value).count(". ") == 0
