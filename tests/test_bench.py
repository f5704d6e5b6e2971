"""The benchmark's pure parts: the designs it derives, its table, its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_medpubsub.bench.__main__ import main
from pytest_medpubsub.bench.capacity import (
    CapacityReading,
    RowCapacity,
    bounds_reached,
    maker_need,
    mean_orders_per_maker,
    orders_partitions,
    read_capacity,
)
from pytest_medpubsub.bench.designs import DESIGNS
from pytest_medpubsub.bench.run import RunFigures
from pytest_medpubsub.bench.table import markdown_table
from pytest_medpubsub.keda.scaledjob import load_scaled_job
from pytest_medpubsub.project import SCALEDJOB_MANIFEST, project_dir

SOURCE = project_dir() / SCALEDJOB_MANIFEST


def test_the_capacity_design_is_the_manifest_the_clusters_get(tmp_path: Path) -> None:
    derived = load_scaled_job(DESIGNS["capacity"].manifest(SOURCE, tmp_path))
    original = load_scaled_job(SOURCE)

    assert derived == original


def test_the_previous_design_differs_only_where_the_old_makers_did(tmp_path: Path) -> None:
    old = load_scaled_job(DESIGNS["one-at-a-time"].manifest(SOURCE, tmp_path))
    new = load_scaled_job(SOURCE)

    assert old.trigger.lag_threshold == 1
    assert old.scaling.min_replica_count == 0
    assert old.scaling.scaling_strategy.strategy == "custom"
    assert old.scaling.scaling_strategy.custom_scaling_queue_length_deduction == -8
    assert old.literal_env["MEDICINE_MAX_ORDERS_IN_FLIGHT"] == "1"
    assert old.literal_env["MEDICINE_MAX_WORKERS"] == "30"
    # Everything else is the same file: topic, group, polling, bounds, tab time.
    assert (old.trigger.topic, old.trigger.consumer_group) == (
        new.trigger.topic,
        new.trigger.consumer_group,
    )
    assert old.scaling.polling_interval == new.scaling.polling_interval
    assert old.scaling.max_replica_count == new.scaling.max_replica_count
    assert old.literal_env["MEDICINE_TAB_SECONDS"] == new.literal_env["MEDICINE_TAB_SECONDS"]


def a_run(design: str, patients: int, p95: float | None) -> RunFigures:
    return RunFigures(
        design=design,
        patients=patients,
        duration_s=60,
        orders=60 * patients,
        complete_orders=60 * patients,
        lost_orders=0,
        duplicate_tabs=0,
        p50_s=2.1,
        p95_s=p95,
        p99_s=None if p95 is None else p95 + 1,
        max_s=None if p95 is None else p95 + 2,
        p95_with_warm_up_s=p95,
        peak_makers=4,
        makers_started=6,
        starts_per_order=0.1,
        maker_cpu_s=12.3,
        broker_cpu_s=None,
        drain_s=1.5,
        harness_cpu_s=4.5,
        machine_busy=0.5,
        makers_needed=3,
        warm_floor=2,
        bound="none",
    )


def test_the_table_gives_each_percentile_and_its_ratio_to_the_floor_per_load_and_design() -> None:
    table = markdown_table([a_run("one-at-a-time", 5, 7.0), a_run("capacity", 5, 2.4)])
    rows = table.splitlines()[2:]

    assert rows[0].startswith("| 5 | capacity | 2.10 (1.05×) | 2.40 (1.20×) | 3.40 (1.70×) |")
    assert rows[1].startswith("| 5 | one-at-a-time | 2.10 (1.05×) | 7.00 (3.50×)")
    assert a_run("capacity", 1, 2.5).to_dict()["ratio_to_floor"]["p95"] == 1.25


def test_a_row_gives_peak_makers_against_the_need_the_bound_and_cpu_per_order() -> None:
    run = a_run("capacity", 5, 2.4)  # 300 orders; makers 12.3 s, no broker figure, harness 4.5 s
    row = markdown_table([run]).splitlines()[2]

    assert row.endswith("| 4 (3 + 2) | none | 41 / – / 15 | 0 | 0 |")


def test_a_row_from_an_older_bench_json_has_dashes_for_what_it_did_not_measure() -> None:
    older = RunFigures(
        **{
            key: value
            for key, value in a_run("capacity", 5, 2.4).to_dict().items()
            if key
            not in {"ratio_to_floor", "harness_cpu_s", "makers_needed", "warm_floor", "bound"}
        }
    )
    row = markdown_table([older]).splitlines()[2]

    assert row.endswith("| 4 | – | 41 / – / – | 0 | 0 |")


@pytest.mark.parametrize(
    ("patients", "per_maker", "floor", "needed"),
    [
        (1, 240 / 15.5, 2, 1),  # 2 orders in flight
        (10, 240 / 15.5, 2, 2),  # 20 orders: 310 tabs on 240 workers each
        (20, 240 / 15.5, 2, 3),
        (30, 240 / 15.5, 2, 4),
        (40, 240 / 15.5, 2, 6),
        (60, 240 / 15.5, 2, 8),
        (5, 1.0, 0, 10),  # one order per maker: every order in flight
        (4, 2.0, 0, 4),  # exactly full: no extra maker for a rounding error
    ],
)
def test_the_makers_a_load_needs_hold_its_orders_in_flight(
    patients: int, per_maker: float, floor: int, needed: int
) -> None:
    need = maker_need(patients, orders_per_maker=per_maker, floor=floor)

    assert (need.needed, need.floor, need.allowed) == (needed, floor, needed + floor)


def test_each_row_holds_what_its_manifest_or_design_says(tmp_path: Path) -> None:
    capacity = DESIGNS["capacity"].capacity(load_scaled_job(SOURCE))
    one_at_a_time = DESIGNS["one-at-a-time"].capacity(
        load_scaled_job(DESIGNS["one-at-a-time"].manifest(SOURCE, tmp_path))
    )
    dispatcher = DESIGNS["dispatcher"].capacity(load_scaled_job(SOURCE))

    # The custom strategy deducts the 2 warm makers from every poll: at most 40 - 2 makers.
    assert capacity == RowCapacity(mean_orders_per_maker(load_scaled_job(SOURCE)), 2, 38)
    assert round(capacity.orders_per_maker, 2) == round(240 / 15.5, 2)
    assert one_at_a_time == RowCapacity(1.0, 0, 40)
    assert dispatcher == RowCapacity(1.0, 0, 40, partitions_bound=False)
    # Its makers are not group members: 40 of them reach their own bound, not the partitions'.
    at_the_bound = read_capacity(
        20, dispatcher, busy=0.5, peak_makers=40, orders_topic="tabs.orders"
    )
    assert at_the_bound.bounds == ("makers (40)",)


@pytest.mark.parametrize(
    ("busy", "peak", "max_makers", "partitions", "reached"),
    [
        (0.5, 5, 40, 40, []),
        (0.93, 5, 40, 40, ["CPU 93 %"]),
        (0.5, 40, 40, 40, ["makers (40)", "partitions (40)"]),
        (0.97, 40, 40, 80, ["CPU 97 %", "makers (40)"]),
        (0.5, 12, 40, 12, ["partitions (12)"]),
        (None, None, 40, None, []),  # nothing measured: nothing claimed
    ],
)
def test_the_bound_a_run_reached_is_the_cpu_the_makers_or_the_partitions(
    busy: float | None,
    peak: int | None,
    max_makers: int,
    partitions: int | None,
    reached: list[str],
) -> None:
    assert (
        bounds_reached(busy=busy, peak_makers=peak, max_makers=max_makers, partitions=partitions)
        == reached
    )


@pytest.mark.parametrize(
    ("reading", "line"),
    [
        (
            CapacityReading(20, maker_need(20, orders_per_maker=240 / 15.5, floor=2), 14, ()),
            "20 patients need 3 makers (+ 2 warm); peak 14; bound reached: none",
        ),
        (
            CapacityReading(1, maker_need(1, orders_per_maker=240 / 15.5, floor=2), None, ()),
            "1 patient need 1 maker (+ 2 warm); peak unknown; bound reached: none",
        ),
        (
            CapacityReading(
                60, maker_need(60, orders_per_maker=1.0, floor=0), 40, ("CPU 99 %", "makers (40)")
            ),
            "60 patients need 120 makers (+ 0 warm); peak 40; bound reached: CPU 99 %, makers (40)",
        ),
    ],
)
def test_a_capacity_reading_is_one_line_for_the_demo(reading: CapacityReading, line: str) -> None:
    assert reading.describe() == line
    assert reading.to_dict()["bound"] == line.rsplit("bound reached: ", 1)[1]


def test_a_reading_takes_the_partitions_from_the_project_s_topics() -> None:
    capacity = DESIGNS["capacity"].capacity(load_scaled_job(SOURCE))
    partitions = orders_partitions("tabs.orders")

    assert partitions == 40
    reading = read_capacity(60, capacity, busy=0.5, peak_makers=40, orders_topic="tabs.orders")
    assert reading.bounds == ("makers (38)", "partitions (40)")
    assert orders_partitions("no.such.topic") is None


def test_rows_past_their_knee_are_not_run_at_the_highest_loads() -> None:
    assert DESIGNS["capacity"].runs_at(60)
    assert not DESIGNS["dispatcher"].runs_at(30)
    assert DESIGNS["dispatcher"].runs_at(20)


def test_a_run_without_complete_orders_shows_dashes() -> None:
    row = markdown_table([a_run("capacity", 1, None)]).splitlines()[2]

    assert "| – | – |" in row


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--loads", "1,x"], "whole numbers"),
        (["--loads", "0"], "from 1 to 60"),
        (["--designs", "nope"], "unknown design"),
        (["--duration", "5"], "more than 10 s"),
    ],
)
def test_bad_arguments_are_one_sentence_and_exit_2(
    arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(arguments) == 2
    assert complaint in capsys.readouterr().err


def test_replot_writes_the_bench_page_with_table_plot_and_links_to_the_runs(tmp_path: Path) -> None:
    from pytest_medpubsub.bench.__main__ import _write
    from pytest_medpubsub.report import write_report
    from pytest_medpubsub.reports.bench_page import run_report
    from tests.test_report import a_run as a_summary

    runs = [a_run("capacity", 1, 2.2), a_run("capacity", 5, 2.4), a_run("dispatcher", 5, 5.0)]
    write_report(run_report(tmp_path, runs[1]).parent, a_summary(), None)
    _write(tmp_path, runs)
    (tmp_path / "index.html").unlink()

    assert main(["--replot", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text()
    assert "<td>5</td><td>capacity</td><td>2.10 (1.05×)</td><td>2.40 (1.20×)</td>" in page
    assert '<a href="run/capacity-5/report/report.html">report</a>' in page
    dispatcher = page.split("<td>dispatcher</td>", 1)[1].split("</tr>", 1)[0]
    assert dispatcher.endswith("<td>–</td>")  # its run kept no report
    assert page.count('<img src="data:image/png;base64,iVBORw0KGgo') == 1


def test_every_row_s_group_is_known_before_its_platform_starts(tmp_path: Path) -> None:
    """The bench moves a row's group to the log end before its makers join it."""
    from medpubsub.settings import KafkaSettings
    from pytest_medpubsub import designs
    from pytest_medpubsub.platforms.local_system import LocalRun

    groups = {}
    for name, row in DESIGNS.items():
        platform = designs.design(row.platform).local_platform(
            LocalRun(KafkaSettings(kafka_bootstrap="127.0.0.1:9"), tmp_path / name),
            manifest=row.manifest(SOURCE, tmp_path / name),
        )
        groups[name] = platform.group_id

    assert groups == {
        "capacity": "medicine",
        "one-at-a-time": "medicine",
        "dispatcher": "dispatcher",
    }
