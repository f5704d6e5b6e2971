"""The designs package: each design is found by its name, says what it needs, and builds the
platform of its own design; an unknown name is one sentence naming the known ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs
from pytest_medpubsub.platforms import factory
from pytest_medpubsub.platforms.base import PlatformUnavailable
from pytest_medpubsub.platforms.local_system import LocalRun
from tests.conftest import PROJECT

KAFKA = KafkaSettings(kafka_bootstrap="localhost:1")


@pytest.mark.parametrize("name", designs.NAMES)
def test_a_design_builds_a_local_platform_of_its_own_design(name: str, tmp_path: Path) -> None:
    design = designs.design(name)
    assert design.name == name
    platform = design.local_platform(LocalRun(KAFKA, tmp_path))  # not started: nothing runs
    assert platform.design == name


def test_only_the_default_design_sets_the_latency_bounds_and_uses_keda() -> None:
    allowances = {name: d.latency_allowance_s for name, d in designs.DESIGNS.items()}
    assert allowances == {"scaledjob": 0.0, "dispatcher": 3.0}
    assert {name for name, d in designs.DESIGNS.items() if d.needs_keda} == {designs.DEFAULT}


def test_an_unknown_design_is_one_sentence_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(designs.UnknownDesign) as refused:
        designs.design("lambda")
    assert str(refused.value).startswith("unknown design 'lambda'; choose one of ")
    assert all(name in str(refused.value) for name in designs.NAMES)
    options = factory.PlatformOptions(cluster="local", run_dir=tmp_path, report_dir=tmp_path)
    with pytest.raises(PlatformUnavailable, match="unknown design 'lambda'"):
        factory.create_local(
            factory.PlatformOptions(**{**options.__dict__, "design": "lambda"}), KAFKA, None
        )


def test_the_help_names_every_design_and_the_default() -> None:
    described = designs.described()
    assert all(f"{name} (" in described for name in designs.NAMES)
    assert described.count("default") == 1
    assert f"{designs.DEFAULT} (" in described.split("default")[0].rsplit(";", 1)[-1]


def test_each_design_s_bench_rows_run_on_its_own_platform() -> None:
    for name, design in designs.DESIGNS.items():
        assert design.bench_rows, f"{name} has no row in the bench"
        assert {row.platform for row in design.bench_rows} == {name}
    rows = [row.name for design in designs.DESIGNS.values() for row in design.bench_rows]
    assert len(rows) == len(set(rows))  # one table: no row name twice


def test_every_test_a_design_leaves_out_exists_and_says_why() -> None:
    """A renamed scenario would silently stop being left out: each node id names a test of the
    project, and each cause is a measured one (a figure in it)."""
    for design in designs.DESIGNS.values():
        for node_id, cause in design.left_out.items():
            path, _, name = node_id.partition("::")
            assert f"def {name}(" in (PROJECT / path).read_text(), node_id
            assert any(character.isdigit() for character in cause), cause
