"""`python -m pytest_medpubsub.bench` (`make bench`): the latency and capacity benchmark.

Every load runs every design, one after the other on the same broker, so each ratio between the
designs is measured at the same time on the same machine. Writes bench.json, bench.md (the table
the README shows), bench.png, and index.html (the table and the plot on one page, each row linked
to its run's report.html) into --out. Every run is bounded: its duration, a drain of at most
four minutes, and the platform's own stop.
"""

from __future__ import annotations

import argparse
import json
import platform as host
import sys
import time
from dataclasses import fields
from pathlib import Path

from rich.console import Console

from pytest_medpubsub import progress, project
from pytest_medpubsub.bench.designs import DESIGNS
from pytest_medpubsub.bench.plot import plot_bench
from pytest_medpubsub.bench.run import FLOOR_S, RunFigures, run_once
from pytest_medpubsub.bench.table import markdown_table
from pytest_medpubsub.kafka.broker import running_broker
from pytest_medpubsub.keda.scaledjob import load_scaled_job
from pytest_medpubsub.platforms.base import PlatformError
from pytest_medpubsub.reports.bench_page import write_bench_page

DEFAULT_LOADS = "1,2,5,10,15,20,30,40,60"
MAX_PATIENTS = 60
_errors = Console(stderr=True, highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.bench",
        description=(
            "Run the local system at each load for each design and write bench.json, bench.md "
            "and bench.png (latency percentiles against the 2 s floor, peak makers against "
            "what the load needs, the bound reached, CPU per order)."
        ),
    )
    parser.add_argument(
        "--loads", default=DEFAULT_LOADS, help=f"patients (default {DEFAULT_LOADS})"
    )
    parser.add_argument("--duration", type=float, default=60.0, metavar="S", help="per run (60 s)")
    parser.add_argument(
        "--designs",
        default=",".join(DESIGNS),
        help=f"comma-separated, of {', '.join(DESIGNS)} (default: all)",
    )
    parser.add_argument("--out", type=Path, default=Path("build/bench"), help="build/bench")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="a running broker instead")
    parser.add_argument(
        "--replot", action="store_true", help="only draw bench.md and bench.png from bench.json"
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other rows of --out/bench.json and replace only the runs made now",
    )
    return parser


def _loads(text: str) -> list[int]:
    try:
        loads = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise PlatformError(
            f"--loads takes whole numbers separated by commas, not {text!r}"
        ) from None
    if not loads or any(not 1 <= load <= MAX_PATIENTS for load in loads):
        raise PlatformError(f"--loads takes patients from 1 to {MAX_PATIENTS}, not {text!r}")
    return loads


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        loads = _loads(arguments.loads)
        designs = [DESIGNS[name] for name in arguments.designs.split(",") if name]
    except KeyError as unknown:
        _errors.print(f"bench: unknown design {unknown}; use one of {', '.join(DESIGNS)}")
        return 2
    except PlatformError as error:
        _errors.print(f"bench: {error}")
        return 2
    if arguments.duration <= 10:
        _errors.print("bench: --duration must be more than 10 s (5 s of it are warm-up)")
        return 2
    out: Path = arguments.out
    if arguments.replot:
        drawn = _earlier_runs(out / "bench.json")
        if not drawn:
            _errors.print(f"bench: no runs in {out / 'bench.json'} to draw")
            return 2
        _write(out, drawn)
        return 0
    source = project.project_dir() / project.SCALEDJOB_MANIFEST
    manifests = {design.name: design.manifest(source, out / "manifests") for design in designs}
    runs: list[RunFigures] = _earlier_runs(out / "bench.json") if arguments.update else []
    with running_broker(external=arguments.kafka) as (kafka, broker):
        for index, patients in enumerate(loads):
            # Alternate which design goes first, so neither always runs on a fresher broker.
            order = designs if index % 2 == 0 else list(reversed(designs))
            for design in order:
                if not design.runs_at(patients):
                    progress.say(
                        f"bench: {design.name} is not run above {design.max_patients} patients"
                        " (its backlog would outlast the drain's bound; designs/)"
                    )
                    continue
                progress.say(
                    f"bench: {design.name} at {patients} patients ({arguments.duration:g} s)"
                )
                figures = run_once(
                    design,
                    manifests[design.name],
                    patients=patients,
                    duration_s=arguments.duration,
                    kafka=kafka,
                    broker=broker,
                    run_dir=out / "run" / f"{design.name}-{patients}",
                )
                runs = [r for r in runs if (r.design, r.patients) != (design.name, patients)]
                runs.append(figures)
                progress.say(
                    f"bench: {design.name} at {patients}: p50 {figures.p50_s} s, p95 "
                    f"{figures.p95_s} s, p99 {figures.p99_s} s, peak makers {figures.peak_makers}"
                    f", lost {figures.lost_orders}, duplicates {figures.duplicate_tabs}"
                )
                _write(out, runs)
    _write(out, runs)
    print((out / "bench.md").read_text(encoding="utf-8"))
    print(f"bench: {out / 'bench.json'}, {out / 'bench.png'}, {out / 'index.html'}")
    return 0


def _write(out: Path, runs: list[RunFigures]) -> None:
    designs = sorted({run.design for run in runs})
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "floor_s": FLOOR_S,
        "designs": {name: DESIGNS[name].summary for name in designs},
        "machine": {"cpus": _cpus(), "python": sys.version.split()[0], "system": host.platform()},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": [run.to_dict() for run in runs],
    }
    (out / "bench.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(markdown_table(runs), encoding="utf-8")
    source = project.project_dir() / project.SCALEDJOB_MANIFEST
    plot_bench(runs, out / "bench.png", load_scaled_job(source).scaling.max_replica_count)
    write_bench_page(out, runs, document, out / "bench.png")


def _earlier_runs(path: Path) -> list[RunFigures]:
    """The runs of an earlier bench.json (for --update); none when there is no such file."""
    if not path.exists():
        return []
    names = {field.name for field in fields(RunFigures)}
    document = json.loads(path.read_text(encoding="utf-8"))
    return [RunFigures(**{k: v for k, v in run.items() if k in names}) for run in document["runs"]]


def _cpus() -> int | None:
    import os

    return os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
