"""The harness's commands: `medpubsub kafka | up | status | down | demo | report`.

Registered into the `medpubsub` command by `medpubsub.cli` when the harness is installed. Each
command that starts processes stops them by pid on Ctrl-C / SIGTERM, in the order patients,
makers, broker, so that no order is left half-made and nothing keeps running (with the local
system, the status view and the one-line failures they share: foreground.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pytest_medpubsub import designs, foreground, processes, progress, project, state
from pytest_medpubsub.bench.capacity import CapacityReading, read_capacity
from pytest_medpubsub.host_cpu import CpuWindow
from pytest_medpubsub.kafka.embedded import HOST as EMBEDDED_HOST
from pytest_medpubsub.kafka.embedded import WILDCARDS
from pytest_medpubsub.kafka.jars import KAFKA_VERSION, libs_dir
from pytest_medpubsub.live import status_table
from pytest_medpubsub.observer import Summary
from pytest_medpubsub.platforms.local import LocalPlatform
from pytest_medpubsub.platforms.local_system import LocalSystem

# Makers idle out after MEDICINE_IDLE_TIMEOUT_SECONDS (10 s in the ScaledJob): a minute is ample.
DEMO_SCALE_IN_S = 60.0
DEMO_DRAIN_S = 180.0

_console, _errors = foreground.console, foreground.errors


def register(commands: Any) -> None:
    """Add the harness commands to the `medpubsub` sub-command parser."""
    kafka = commands.add_parser(
        "kafka",
        help=f"run an embedded Apache Kafka {KAFKA_VERSION} in the foreground",
        description=(
            f"Run a single-node Apache Kafka {KAFKA_VERSION} (KRaft) on 127.0.0.1 (or --host) "
            "with the system's topics created, until Ctrl-C / SIGTERM. Prints "
            "bootstrap=HOST:PORT (the advertised address) once clients can connect. Jars come "
            "from KAFKA_HOME or are fetched once by Maven."
        ),
    )
    _data_dir_option(kafka)
    kafka.add_argument("--port", type=int, help="client port (default: a free port)")
    kafka.add_argument(
        "--host",
        default=EMBEDDED_HOST,
        metavar="ADDR",
        help=f"address the client listener binds (default {EMBEDDED_HOST}; 0.0.0.0 binds every "
        "address and then needs --advertise); pods of a cluster on this machine reach the "
        "host's own address, not loopback",
    )
    kafka.add_argument(
        "--advertise",
        metavar="ADDR",
        help="address clients are told to dial (default: --host); the controller stays on loopback",
    )
    _secure_option(kafka)
    kafka.add_argument(
        "--resolve-only",
        action="store_true",
        help="only fetch the jars into the cache (what `make install` does), then exit",
    )
    kafka.set_defaults(func=run_kafka)

    up = commands.add_parser(
        "up",
        help="run the whole system locally in the foreground with a live status view",
        description=(
            "Start Kafka (embedded, or --kafka), N patients and the KEDA-exact ScaledJob "
            "controller for the makers; show orders/s, tabs/s, makers, lag and latency until "
            "Ctrl-C. Other tools (locust, chaos, `medpubsub status`/`down`) find it through "
            ".medpubsub/local.json."
        ),
    )
    _system_options(up)
    up.set_defaults(func=run_up)

    status = commands.add_parser("status", help="show what the local system runs now")
    status.set_defaults(func=run_status)
    down = commands.add_parser("down", help="stop the local system started by `medpubsub up`")
    down.set_defaults(func=run_down)

    demo = commands.add_parser(
        "demo",
        help="run the system for a while, drain it, write a report; exit 1 if an SLO fails",
        description=(
            "Bring the local system up, run N patients for S seconds, stop them, wait for the "
            "makers to drain every order, then write report.json and plots to --report and check "
            "the SLOs (p95 <= 3 s, p99 <= 4 s, nothing lost, nothing duplicated, makers back to "
            "the warm floor)."
        ),
    )
    _system_options(demo)
    demo.add_argument("--duration", type=float, default=45.0, metavar="S", help="default 45 s")
    demo.add_argument(
        "--report", type=Path, default=Path("build/demo-report"), metavar="DIR",
        help="where report.json and the plots go (default build/demo-report)",
    )  # fmt: skip
    demo.set_defaults(func=run_demo)

    report = commands.add_parser(
        "report",
        help="draw a run's report.html again from its report.json; print the page's path",
        description=(
            "Render report.html (and the plots, when they are missing) from the report.json in "
            "DIR: an old run's, or one copied out of CI. Prints the path of the page to open."
        ),
    )
    report.add_argument("directory", type=Path, metavar="DIR", help="holds report.json")
    report.set_defaults(func=run_report)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the broker's data here (reused on the next start); default: a temporary dir",
    )


def _system_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, default=1, metavar="N", help="default 1")
    parser.add_argument(
        "--kafka", metavar="HOST:PORT", help="use this running broker instead of the embedded one"
    )
    parser.add_argument(
        "--design",
        choices=designs.NAMES,
        default=designs.DEFAULT,
        help=f"how makers are started: {designs.described()}",
    )
    _data_dir_option(parser)
    _secure_option(parser)


def _secure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secure",
        action="store_true",
        help="SASL/SCRAM-SHA-512 and ACLs on the embedded broker: one identity per service, "
        "passwords in a 0600 credentials file (printed as credentials=PATH)",
    )


# -- kafka ----------------------------------------------------------------------------------------


def run_kafka(arguments: argparse.Namespace) -> int:
    from pytest_medpubsub.kafka.broker import running_broker

    if arguments.resolve_only:
        return foreground.failing_cleanly("kafka", lambda: print(f"kafka jars: {libs_dir()}"))
    if arguments.host in WILDCARDS and not arguments.advertise:
        _errors.print(
            f"medpubsub kafka: --host {arguments.host} binds every address, so --advertise must "
            "name the one clients dial.",
            markup=False,
        )
        return 2
    stop = foreground.stop_on_signals()

    def serve() -> None:
        with running_broker(
            data_dir=arguments.data_dir,
            port=arguments.port,
            host=arguments.host,
            advertise=arguments.advertise,
            secure=arguments.secure,
        ) as (kafka, broker):
            print(f"bootstrap={kafka.kafka_bootstrap}", flush=True)
            if broker is not None and broker.credentials_file is not None:
                print(f"credentials={broker.credentials_file}", flush=True)
            stop.wait()

    return foreground.failing_cleanly("kafka", serve)


# -- up / demo ------------------------------------------------------------------------------------


def _secure_needs_embedded(command: str, arguments: argparse.Namespace) -> bool:
    """--secure with --kafka is a usage error (said in one line): only our broker is secured."""
    if arguments.secure and arguments.kafka:
        _errors.print(
            f"medpubsub {command}: --secure secures the embedded broker; it cannot be used with "
            "--kafka.",
            markup=False,
        )
        return True
    return False


def run_up(arguments: argparse.Namespace) -> int:
    if _secure_needs_embedded("up", arguments):
        return 2
    try:
        running = state.read()
    except state.NoLocalSystem:
        pass
    else:
        _errors.print(
            f"medpubsub up: a local system is already running (pid {running.owner_pid}, Kafka "
            f"{running.bootstrap}); stop it with `medpubsub down`."
        )
        return 1
    stop = foreground.stop_on_signals()

    def serve() -> None:
        with foreground.local_system(arguments, state.default_path()) as (platform, observer):
            since = observer.mark()
            _console.print(
                f"medpubsub is up: Kafka at {platform.bootstrap_servers}; state in "
                f"{state.default_path()}; Ctrl-C to stop."
            )
            credentials = platform.broker.credentials_file if platform.broker else None
            if credentials is not None:
                _console.print(f"credentials={credentials}", markup=False)
            foreground.watch(platform.bootstrap_servers, observer, since, stop, deadline=None)

    return foreground.failing_cleanly("up", serve)


def run_demo(arguments: argparse.Namespace) -> int:
    from pytest_medpubsub.reports.run_page import REPORT_HTML, write_run_page
    from pytest_medpubsub.reports.settings import run_settings
    from pytest_medpubsub.run_end import end_run
    from pytest_medpubsub.slo import SloSpec

    if arguments.duration <= 0:
        _errors.print(f"medpubsub demo: --duration must be positive, not {arguments.duration}")
        return 2
    if _secure_needs_embedded("demo", arguments):
        return 2
    stop = foreground.stop_on_signals()
    outcome: list[int] = []

    def serve() -> None:
        with foreground.local_system(arguments, state.default_path()) as (platform, observer):
            since = observer.mark()
            machine = CpuWindow()
            foreground.watch(
                platform.bootstrap_servers, observer, since, stop,
                deadline=time.monotonic() + arguments.duration,
            )  # fmt: skip
            busy = machine.share().busy
            capacity: list[CapacityReading] = []

            def facts() -> dict[str, Any]:
                # Asked once the makers are drained and scaled in: the peak is the whole run's.
                peak = observer.summary(since=since).max_jobs
                capacity.append(_capacity(arguments, platform, busy, peak))
                return {"demo": _demo_facts(arguments, platform), "capacity": capacity[0].to_dict()}

            spec = SloSpec(min_jobs=1, scale_in_within_s=DEMO_SCALE_IN_S).allowing(
                designs.design(arguments.design).latency_allowance_s
            )
            ended = end_run(
                platform,
                observer,
                since,
                arguments.report,
                drain_timeout_s=DEMO_DRAIN_S,
                spec=spec,
                design=arguments.design,
                settings=run_settings(
                    name="medpubsub demo",
                    platform="local",
                    design=arguments.design,
                    secure=arguments.secure,
                    external_kafka=arguments.kafka,
                    warm_makers=platform.warm_makers(),
                ),
                facts=facts,
            )
            diagnostics = None
            if not ended.slo.passed:
                # The broker's and every process's logs, while the run's directory still exists:
                # what a failed demo is diagnosed from (linked from the page).
                diagnostics = ended.report.parent / "diagnostics"
                platform.dump_diagnostics(diagnostics)
                write_run_page(ended.report.parent)
            _print_outcome(
                ended.summary,
                ended.slo.failure_message(),
                capacity[0].describe() if capacity else None,
                ended.report.parent / REPORT_HTML,
                diagnostics,
            )
            outcome.append(0 if ended.slo.passed else 1)

    status = foreground.failing_cleanly("demo", serve)
    return status if status != 0 else (outcome[0] if outcome else 1)


def _demo_facts(arguments: argparse.Namespace, platform: LocalSystem) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "patients": arguments.patients,
        "duration_s": arguments.duration,
        "makers_started": platform.jobs_created,
    }
    if isinstance(platform, LocalPlatform):
        spec = platform.spec
        facts["scaledjob"] = {
            "polling_interval_s": spec.scaling.polling_interval,
            "max_replica_count": spec.scaling.max_replica_count,
            "strategy": spec.scaling.scaling_strategy.strategy,
            "lag_threshold": spec.trigger.lag_threshold,
        }
    return facts


def _capacity(
    arguments: argparse.Namespace, platform: LocalSystem, busy: float, peak: int | None
) -> CapacityReading:
    """The demo's load against what it needs, and the bound it reached (bench/capacity.py)."""
    from pytest_medpubsub.keda.scaledjob import load_scaled_job

    spec = (
        platform.spec
        if isinstance(platform, LocalPlatform)
        else load_scaled_job(project.project_dir() / project.SCALEDJOB_MANIFEST)
    )
    shipped = designs.design(arguments.design).bench_rows[0]  # the design as it ships
    return read_capacity(
        arguments.patients,
        shipped.capacity(spec),
        busy=busy,
        peak_makers=peak,
        orders_topic=platform.kafka.orders_topic,
    )


def _print_outcome(
    summary: Summary,
    slo_table: str,
    capacity: str | None,
    report: Path,
    diagnostics: Path | None,
) -> None:
    _console.print(status_table(summary, "-", "medpubsub demo: the run"))
    _console.print(slo_table, markup=False)
    if capacity is not None:
        _console.print(f"capacity: {capacity}", soft_wrap=True, markup=False, highlight=False)
    # One line whatever the terminal's width: scripts and people copy the path from it.
    _console.print(f"report: {report}", soft_wrap=True, markup=False, highlight=False)
    if diagnostics is not None:
        _console.print(
            f"logs of the broker and of every process: {diagnostics}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


# -- report ---------------------------------------------------------------------------------------


def run_report(arguments: argparse.Namespace) -> int:
    """Draw the page again; a directory without a readable report is one sentence, exit 2."""
    from pytest_medpubsub.report import ReportUnreadable, render_again

    try:
        page = render_again(arguments.directory)
    except ReportUnreadable as error:
        _errors.print(f"medpubsub report: {error}", markup=False)
        return 2
    print(page)
    return 0


# -- status / down --------------------------------------------------------------------------------


def _local_system(command: str) -> state.LocalState | None:
    """What `medpubsub up` wrote, or None after saying why there is nothing to act on."""
    try:
        return state.read()
    except state.NoLocalSystem as error:
        _errors.print(f"medpubsub {command}: {error}")
        return None


def run_status(_: argparse.Namespace) -> int:
    current = _local_system("status")
    if current is None:
        return 1
    age_s = (time.time_ns() - current.updated_at_ns) / 1e9
    _console.print(f"owner pid {current.owner_pid} (state {age_s:.1f} s old)")
    _console.print(f"Kafka {current.bootstrap}, group {current.group_id}")
    _console.print(f"broker pid {current.broker.pid if current.broker else 'external'}")
    _console.print(f"patients {len(current.patients)}: {_names(current.patients)}")
    _console.print(f"makers {len(current.makers)}: {_names(current.makers)}")
    return 0


def run_down(_: argparse.Namespace) -> int:
    current = _local_system("down")
    if current is None:
        return 1
    with progress.step(f"Stopping the local system (pid {current.owner_pid})"):
        processes.stop_pid(current.owner_pid, grace_s=60)
        # Should its owner have died without cleaning up, stop what it had started.
        broker = [current.broker] if current.broker is not None else []
        for child in (*current.patients, *current.makers, *broker):
            processes.stop_pid(child.pid)
    state.remove()
    return 0


def _names(items: list[state.ProcessInfo]) -> str:
    return ", ".join(f"{item.name} ({item.pid})" for item in items) or "-"
