"""The plugin itself, run in a sub-session: options, errors, fixtures, SLO failures, reports.

The sub-sessions that need Kafka share one broker of this module's own (`--medpubsub-kafka`),
not the outer session's: a sub-session's platform drives the system's consumer group, and on the
outer broker it would compete with the outer platform whenever that one is up (the scenarios
start it), so the result would depend on the order in which folders run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_medpubsub.kafka.broker import running_broker

A_SHORT_RUN = """
import pytest

@pytest.mark.medpubsub_slo({slo})
def test_one_patient_for_a_moment(medpubsub_system):
    medpubsub_system.scale_patients(1)
    medpubsub_system.observer.wait_for_orders(3, timeout_s=30, since=medpubsub_system.started)
"""


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[str]:
    """A broker for this module's sub-sessions alone (with the system's topics), stopped after."""
    with running_broker() as (kafka, _):
        yield kafka.kafka_bootstrap


def test_an_unknown_platform_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--medpubsub-cluster=docker-desktop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --medpubsub-cluster: invalid choice*"])


def usage_error_line(cluster: str, directory: Path) -> str:
    """The one ERROR line of `pytest --medpubsub-cluster=<cluster>` run in an empty directory
    with a PATH without docker, kind, minikube or kubectl (the check must answer in seconds)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--medpubsub-cluster={cluster}",
            "-p",
            "no:cacheprovider",
        ],
        cwd=directory,
        env={"PATH": str(directory), "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(error_lines) == 1, result.stderr
    return error_lines[0]


@pytest.mark.slow
def test_a_cluster_without_docker_says_so_in_one_sentence(tmp_path: Path) -> None:
    assert "--medpubsub-cluster=kind" in usage_error_line("kind", tmp_path)


@pytest.mark.slow
def test_an_existing_cluster_without_a_way_to_get_images_says_so_in_one_sentence(
    tmp_path: Path,
) -> None:
    line = usage_error_line("existing", tmp_path)
    assert "--medpubsub-image-registry" in line
    assert "--medpubsub-containerd" in line
    assert "exactly one" in line


def test_every_fixture_is_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for fixture in (
        "medpubsub_system",
        "medpubsub_kafka",
        "medpubsub_platform",
        "medpubsub_observer",
        "medpubsub_report_dir",
    ):
        result.stdout.fnmatch_lines([f"{fixture}*", "*[A-Za-z]*"])
    assert "session [session scope]" not in result.stdout.str()


def test_an_unknown_slo_keyword_names_the_accepted_ones(
    pytester: pytest.Pytester, private_kafka: str
) -> None:
    pytester.makepyfile(A_SHORT_RUN.format(slo="p95=3"))
    result = pytester.runpytest(f"--medpubsub-kafka={private_kafka}")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*medpubsub_slo*p95*p95_s*"])


def test_a_missed_slo_fails_the_test_with_measured_and_required(
    pytester: pytest.Pytester, private_kafka: str
) -> None:
    # No order can be made in 0.5 s (a tab takes 2 s): the latency check must fail, and the
    # others still be reported.
    pytester.makepyfile(A_SHORT_RUN.format(slo="p95_s=0.5, p99_s=0.6"))
    report_dir = pytester.path / "reports"
    result = pytester.runpytest(
        f"--medpubsub-kafka={private_kafka}", f"--medpubsub-report={report_dir}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*SLOs not met*", "*latency_p95*≤ 0.5 s*", "*lost_orders*0*≤ 0*", "*SLO FAILED*"]
    )
    (report,) = report_dir.glob("*/report.json")
    document = json.loads(report.read_text())
    assert document["slo"]["passed"] is False
    assert document["orders"] >= 3
    assert document["lost_orders"] == 0
    assert document["duplicate_tabs"] == 0
    assert document["latency_s"]["p50"] >= 2.0  # the physical floor of an order
    for plot in ("latency.png", "latency-distribution.png", "scaling.png"):
        assert (report.parent / plot).stat().st_size > 0


@pytest.mark.parametrize(("when", "dumped"), [("failed", False), ("always", True)])
def test_a_passing_test_keeps_the_makers_logs_only_when_diagnostics_are_always_written(
    pytester: pytest.Pytester, private_kafka: str, when: str, dumped: bool
) -> None:
    pytester.makepyfile(A_SHORT_RUN.format(slo="p95_s=30, p99_s=30"))
    report_dir = pytester.path / "reports"
    result = pytester.runpytest(
        f"--medpubsub-kafka={private_kafka}",
        f"--medpubsub-report={report_dir}",
        f"--medpubsub-diagnostics={when}",
    )
    result.assert_outcomes(passed=1)
    (report,) = report_dir.glob("*/report.json")
    maker_logs = list((report.parent / "diagnostics").rglob("medicine*.log"))
    assert bool(maker_logs) is dumped, sorted(p.name for p in report.parent.rglob("*"))
    if dumped:
        assert any("assigned" in log.read_text() for log in maker_logs)


def test_a_test_for_another_design_is_skipped_before_any_platform_starts(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.medpubsub_design("dispatcher")
        def test_dispatched(medpubsub_system):
            raise AssertionError("ran under the wrong design")
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*runs under --medpubsub-design=dispatcher (this run: scaledjob)*"]
    )
    assert "Starting Apache Kafka" not in result.stdout.str()


@pytest.mark.parametrize("marker", ['medpubsub_design("dispacher")', "medpubsub_design_slo()"])
def test_a_design_marker_naming_no_design_is_a_usage_error(
    pytester: pytest.Pytester, marker: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_typo: medpubsub_design*: unknown design '*'; choose one of*"]
    )


def test_a_test_a_design_leaves_out_is_skipped_with_its_cause_unless_asked_for(
    pytester: pytest.Pytester,
) -> None:
    """Under the dispatcher design the step ramp is left out (designs/dispatcher.py), by the
    node id it has in the project; the ScaledJob design runs it."""
    pytester.makepyfile(
        **{
            "scenarios/test_step_ramp": """
                def test_makers_follow_a_step_from_one_to_fifteen_patients():
                    pass

                def test_another_scenario():
                    pass
                """
        }
    )
    # importlib: the outer session has imported the project's own test_step_ramp module.
    options = ("-p", "no:cacheprovider", "--import-mode=importlib")
    left_out = pytester.runpytest(*options, "-rs", "--medpubsub-design=dispatcher")
    left_out.assert_outcomes(passed=1, skipped=1)
    left_out.stdout.fnmatch_lines(["*the dispatcher design leaves this out: its 15 patients are*"])
    asked = pytester.runpytest(
        *options, "--medpubsub-design=dispatcher", "--medpubsub-run-left-out"
    )
    asked.assert_outcomes(passed=2)
    pytester.runpytest(*options).assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("design", "marked", "unmarked"),
    [("scaledjob", (4.0, 6.0), (3.0, 4.0)), ("dispatcher", (7.0, 9.0), (6.0, 7.0))],
)
def test_a_design_adds_its_allowance_to_the_markers_and_the_defaults(
    pytester: pytest.Pytester,
    design: str,
    marked: tuple[float, float],
    unmarked: tuple[float, float],
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_medpubsub import plugin

        @pytest.mark.medpubsub_slo(p95_s=4.0, p99_s=6.0)
        def test_marked(request):
            spec = plugin._slo_spec(request.node)
            assert (spec.p95_s, spec.p99_s) == {marked}

        def test_unmarked(request):
            spec = plugin._slo_spec(request.node)
            assert (spec.p95_s, spec.p99_s) == {unmarked}
        """
    )
    result = pytester.runpytest(f"--medpubsub-design={design}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_design_slo_marker_replaces_the_bounds_under_its_design_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_medpubsub import plugin

        @pytest.mark.medpubsub_slo(p95_s=4.0, p99_s=6.0, min_jobs=4)
        @pytest.mark.medpubsub_design_slo("dispatcher", p95_s=12.0, p99_s=15.0)
        def test_spec(request):
            spec = plugin._slo_spec(request.node)
            design = request.config.getoption("--medpubsub-design")
            expected = (12.0, 15.0) if design == "dispatcher" else (4.0, 6.0)
            assert (spec.p95_s, spec.p99_s) == expected
            assert spec.min_jobs == 4  # the rest of the test's marker still holds
        """
    )
    for design in ("scaledjob", "dispatcher"):
        result = pytester.runpytest(f"--medpubsub-design={design}", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
