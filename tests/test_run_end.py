"""How every run ends (plugin, demo, bench): the order of the steps, the warm floor the SLOs are
judged against, and what the report holds, on a recording platform and observer (no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import report, run_end
from pytest_medpubsub.observer import Mark, Summary
from pytest_medpubsub.platforms.base import Platform
from pytest_medpubsub.reports.dead_letters import DEAD_LETTERS_KEY
from pytest_medpubsub.slo import SloSpec
from tests.test_report import a_run

SINCE = Mark(1_800_000_000_000_000_000)


class RecordingPlatform(Platform):
    """Two patients running, `warm` makers kept at rest; every call is logged."""

    name = "recording"

    def __init__(self, log: list[str], warm: int) -> None:
        self._log = log
        self._warm = warm
        self._patients = 2

    def start(self) -> None:
        raise AssertionError("ending a run never starts the platform")

    def stop(self) -> None:
        raise AssertionError("ending a run never stops the platform")

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(kafka_bootstrap="localhost:1")

    def scale_patients(self, count: int) -> None:
        self._log.append(f"patients {count}")
        self._patients = count

    def patients(self) -> int:
        return self._patients

    def medicine_jobs(self) -> int:
        return 0

    def kill_medicine(self, count: int = 1) -> list[str]:
        return []

    def lag(self) -> int:
        return 0

    def warm_makers(self) -> int:
        return self._warm


class RecordingObserver:
    """Gives `summary` (a run whose makers were 4 until 3 s after the load ended, then 0)."""

    def __init__(self, log: list[str], summary: Summary) -> None:
        self._log = log
        self._summary = summary

    def wait_drained(self, timeout_s: float, since: Mark | None = None) -> Summary:
        assert since == SINCE
        self._log.append(f"drain {timeout_s:g}")
        return self._summary

    def summary(self, since: Mark | None = None, final: bool = False) -> Summary:
        assert since == SINCE
        if final:
            self._log.append("final summary")
        return self._summary


class FakeDeadLetters:
    def to_dict(self) -> dict[str, Any]:
        return {"records": ["one"]}


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    """Dead letters are read back from a fake, which records what it was asked for."""
    asked: list[tuple[str, int | None]] = []

    def read(kafka: KafkaSettings, since_ns: int | None) -> FakeDeadLetters:
        asked.append((kafka.kafka_bootstrap, since_ns))
        return FakeDeadLetters()

    monkeypatch.setattr(run_end, "read_dead_letters", read)
    return asked


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """report.json without drawing (test_report draws; matplotlib takes most of a second)."""
    monkeypatch.setattr(report, "write_plots", lambda *_: None)


def test_a_run_stops_its_load_drains_then_scales_in_and_writes_one_report(
    tmp_path: Path, no_broker: list[tuple[str, int | None]]
) -> None:
    log: list[str] = []
    platform = RecordingPlatform(log, warm=4)

    def facts() -> dict[str, Any]:
        log.append("facts")
        return {"demo": {"patients": 2}}

    ended = run_end.end_run(
        platform,
        RecordingObserver(log, a_run()),
        SINCE,
        tmp_path / "report",
        drain_timeout_s=30,
        # The makers were 4 for 3 s after the load's end: within 2.5 s only against a warm
        # floor of 4, so the verdict shows that the platform's floor was used.
        spec=SloSpec(p95_s=None, p99_s=None, max_lost=5, max_duplicates=5, scale_in_within_s=2.5),
        design="scaledjob",
        settings={"name": "a run"},
        facts=facts,
        drained=lambda: log.append("drained"),
    )

    assert log == ["patients 0", "drain 30", "drained", "final summary", "facts"]
    assert ended.slo.passed, ended.slo.failure_message()
    assert ended.report == tmp_path / "report" / "report.json"
    document = json.loads(ended.report.read_text())
    assert document["design"] == "scaledjob"
    assert document["settings"] == {"name": "a run"}
    assert document["demo"] == {"patients": 2}
    assert document[DEAD_LETTERS_KEY] == {"records": ["one"]}  # the run had 2 dead letters
    assert no_broker == [("localhost:1", SINCE.ns)]
    assert document["slo"]["passed"] is True
    assert (tmp_path / "report" / "report.html").is_file()


@pytest.mark.usefixtures("no_plots")
def test_without_a_warm_floor_the_same_run_fails_its_scale_in(
    tmp_path: Path, no_broker: list[tuple[str, int | None]]
) -> None:
    ended = run_end.end_run(
        RecordingPlatform([], warm=0),
        RecordingObserver([], a_run()),
        SINCE,
        tmp_path,
        drain_timeout_s=30,
        spec=SloSpec(p95_s=None, p99_s=None, max_lost=5, max_duplicates=5, scale_in_within_s=2.5),
        design="scaledjob",
        settings={},
    )
    assert [check.name for check in ended.slo.failed_checks()] == ["scale_in"]


@pytest.mark.usefixtures("no_plots")
def test_a_run_without_slos_writes_its_figures_and_no_verdict(
    tmp_path: Path, no_broker: list[tuple[str, int | None]]
) -> None:
    log: list[str] = []
    ended = run_end.end_run(
        RecordingPlatform(log, warm=1),
        RecordingObserver(log, a_run()),
        SINCE,
        tmp_path,
        drain_timeout_s=240,
        spec=None,
        design="dispatcher",
        settings={"name": "bench"},
    )
    assert log == ["patients 0", "drain 240", "final summary"]  # no scale-in wait
    assert ended.result is None
    with pytest.raises(ValueError, match="without SLOs"):
        _ = ended.slo
    document = json.loads(ended.report.read_text())
    assert document["slo"] is None
    assert document["orders"] == a_run().orders
