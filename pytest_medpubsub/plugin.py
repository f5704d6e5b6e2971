"""The medpubsub pytest plugin (entry point `medpubsub`): options, fixtures, the SLO marker.

Options and ini keys are registered here and nowhere else. A session brings the platform up once
(`medpubsub_platform`); each test that asks for `medpubsub_system` gets the running system with a
fresh observer mark, and after the test body the plugin stops the load, waits for the makers to
drain, checks the SLOs (the `medpubsub_slo` marker over the ini defaults) and writes the test's
report. A failed SLO fails the test with every check's measured and required value.

Why one module of this size (over 450 lines): pytest reads a plugin's hooks and fixtures from the
module its entry point names, and every option and ini key is registered here and nowhere else;
what the hooks do is elsewhere (`run_end`, `designs`, `reports/`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medpubsub.settings import KafkaSettings
from pytest_medpubsub import designs, processes, progress, project
from pytest_medpubsub.host_cpu import CLUSTER_QUIET_TIMEOUT_S, QuietWait, settle
from pytest_medpubsub.kafka.embedded import EmbeddedKafka
from pytest_medpubsub.kafka.jars import KafkaUnavailable
from pytest_medpubsub.kafka.security import as_identity
from pytest_medpubsub.observer import Observer, PlatformSample
from pytest_medpubsub.platforms import factory
from pytest_medpubsub.platforms.base import Platform, PlatformError, PlatformUnavailable
from pytest_medpubsub.report import junit_properties
from pytest_medpubsub.reports.index_page import write_index
from pytest_medpubsub.reports.run_page import write_run_page
from pytest_medpubsub.reports.settings import run_settings
from pytest_medpubsub.reports.slowest import failure_context
from pytest_medpubsub.run_end import end_run
from pytest_medpubsub.slo import SloResult, SloSpec
from pytest_medpubsub.system import MedpubsubSystem

_SLO_INI = {
    "p95_s": ("medpubsub_slo_p95_s", "default p95 order latency bound in seconds", "3.0"),
    "p99_s": ("medpubsub_slo_p99_s", "default p99 order latency bound in seconds", "4.0"),
    "max_lost": ("medpubsub_slo_max_lost", "default number of lost orders allowed", "0"),
    "max_duplicates": ("medpubsub_slo_max_duplicates", "default duplicate tabs allowed", "0"),
}
_DRAIN_INI = ("medpubsub_drain_timeout_s", "how long to wait for makers to drain a test", "120")
_QUIET_INI = (
    (
        "medpubsub_quiet_cpu_percent",
        "before a test's load starts, wait until the machine is at most this busy (percent)",
        "75",
    ),
    (
        "medpubsub_quiet_timeout_s",
        "how long to wait for that (then the test runs anyway, its report says how busy); "
        f"empty: {CLUSTER_QUIET_TIMEOUT_S:g} on a cluster, 0 locally",
        "",
    ),
)
# When a test dumps the platform's diagnostics: on a failed SLO only, or after every test.
DIAGNOSTICS_CHOICES = ("failed", "always")
_RESULTS = pytest.StashKey[list[tuple[str, Path, SloResult | None]]]()
_REPORT_OF_ITEM = pytest.StashKey[Path]()  # the test's report.json, for pytest-html's extras


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("medpubsub", "medpubsub: the system under test and its platform")
    group.addoption(
        "--medpubsub-cluster",
        choices=factory.PLATFORMS,
        default=factory.LOCAL,
        help="where the system runs: local (embedded Kafka + processes, default), kind, "
        "minikube, or the existing kubeconfig context",
    )
    group.addoption(
        "--medpubsub-kafka",
        metavar="HOST:PORT",
        help="use this running broker: instead of the embedded one (local), instead of Strimzi "
        "(kind, minikube, existing; pods must reach it and it must advertise such an address)",
    )
    group.addoption(
        "--medpubsub-report",
        metavar="DIR",
        type=Path,
        help="write each test's report.json and plots under DIR/<test> "
        "(default: build/medpubsub-report under the rootdir)",
    )
    group.addoption(
        "--medpubsub-secure",
        action="store_true",
        help="local: the embedded broker takes SASL/SCRAM-SHA-512 only and enforces ACLs; each "
        "service, the observer and the harness connect with their own least-privilege identity",
    )
    group.addoption(
        "--medpubsub-keep",
        action="store_true",
        help="leave the cluster and the system running after the session",
    )
    group.addoption(
        "--medpubsub-image-registry",
        metavar="REGISTRY",
        help="existing cluster: push the service images here (e.g. registry.example:5000/team)",
    )
    group.addoption(
        "--medpubsub-strimzi-manifest",
        metavar="PATH",
        help="install Strimzi from this local file instead of its pinned release manifest",
    )
    group.addoption(
        "--medpubsub-keda-manifest",
        metavar="PATH",
        help="install KEDA from this local file instead of its pinned release manifest",
    )
    group.addoption(
        "--medpubsub-containerd",
        metavar="SOCKET",
        help="existing cluster without a registry: import the service images into the node's "
        "containerd at SOCKET (docker save | ctr import) and never pull them",
    )
    group.addoption(
        "--medpubsub-run-left-out",
        action="store_true",
        help="also run the tests the design leaves out (`left_out` in "
        "pytest_medpubsub/designs/<design>.py, each with its measured cause)",
    )
    group.addoption(
        "--medpubsub-diagnostics",
        choices=DIAGNOSTICS_CHOICES,
        default="failed",
        help="when a test writes the platform's diagnostics (pods, events, the makers' and "
        "operators' logs) into its report directory: only when its SLOs fail (default), or "
        "always, to read a passing run's logs too",
    )
    group.addoption(
        "--medpubsub-design",
        choices=designs.NAMES,
        default=designs.DEFAULT,
        help=f"how makers are started: {designs.described()}",
    )
    for ini_name, help_text, default in (*_SLO_INI.values(), _DRAIN_INI, *_QUIET_INI):
        parser.addini(ini_name, help_text, default=default)


@pytest.hookimpl(trylast=True)  # after the terminal reporter is registered
def pytest_configure(config: pytest.Config) -> None:
    processes.run_id()  # every process started from now on inherits it (see `leftovers`)
    config.addinivalue_line(
        "markers",
        "medpubsub_slo(p95_s=, p99_s=, max_lost=, max_duplicates=, min_jobs=, "
        "scale_out_within_s=, scale_in_within_s=, min_orders=): the SLOs a medpubsub_system "
        "test must meet (over the medpubsub_slo_* ini defaults)",
    )
    config.addinivalue_line(
        "markers",
        "medpubsub_design(name): run this test only under --medpubsub-design=name (skipped "
        "before any medpubsub fixture starts a platform)",
    )
    config.addinivalue_line(
        "markers",
        "medpubsub_design_slo(name, **slo): under --medpubsub-design=name, these SLOs replace "
        "the test's medpubsub_slo ones (and the design's allowance); say the measured cause",
    )
    config.stash[_RESULTS] = []
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:

        def write(line: str) -> None:
            reporter.ensure_newline()
            reporter.write_line(f"[medpubsub] {line}")

        progress.sink = write
    options = _platform_options(config)
    if config.getoption("--medpubsub-secure") and (
        options.cluster != factory.LOCAL or options.kafka
    ):
        raise pytest.UsageError(
            "--medpubsub-secure secures the embedded broker of the local platform; it cannot be "
            "combined with --medpubsub-kafka or another --medpubsub-cluster"
        )
    if options.cluster != factory.LOCAL:
        try:
            factory.check_available(options, project.project_dir())
        except (PlatformUnavailable, project.ProjectNotFound) as error:
            raise pytest.UsageError(f"--medpubsub-cluster={options.cluster}: {error}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    progress.sink = None


# -- fixtures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Broker:
    kafka: KafkaSettings
    embedded: EmbeddedKafka | None


@pytest.fixture(scope="session")
def _medpubsub_broker(request: pytest.FixtureRequest) -> Iterator[_Broker]:
    from pytest_medpubsub.kafka.broker import running_broker

    external = request.config.getoption("--medpubsub-kafka")
    secure = bool(request.config.getoption("--medpubsub-secure"))
    try:
        with running_broker(external=external, secure=secure) as (kafka, embedded):
            yield _Broker(kafka, embedded)
    except KafkaUnavailable as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def medpubsub_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """The platform of --medpubsub-cluster, up for the whole session (Kafka, scaler, 0 patients)."""
    options = _platform_options(request.config)
    try:
        if options.cluster == factory.LOCAL:
            broker: _Broker = request.getfixturevalue("_medpubsub_broker")
            platform = factory.create_local(options, broker.kafka, broker.embedded)
        else:
            platform = factory.create_cluster(options, project.project_dir())
        platform.start()
    except (PlatformError, project.ProjectNotFound) as error:
        pytest.fail(f"the {options.cluster} platform did not start: {error}", pytrace=False)
    try:
        yield platform
    finally:
        platform.stop()
        shutil.rmtree(options.run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def medpubsub_kafka(request: pytest.FixtureRequest) -> str:
    """Bootstrap servers of the system's Kafka with its topics (local: the embedded broker)."""
    if _platform_options(request.config).cluster == factory.LOCAL:
        broker: _Broker = request.getfixturevalue("_medpubsub_broker")
        return broker.kafka.kafka_bootstrap
    platform: Platform = request.getfixturevalue("medpubsub_platform")
    return platform.bootstrap_servers


@pytest.fixture(scope="session")
def medpubsub_observer(medpubsub_platform: Platform) -> Iterator[Observer]:
    """Watches every order, tab and dead letter of the session, and samples the platform."""

    def sample() -> PlatformSample:
        return PlatformSample(
            patients=medpubsub_platform.patients(),
            jobs=medpubsub_platform.medicine_jobs(),
            lag=medpubsub_platform.lag(),
        )

    kafka = as_identity(medpubsub_platform.kafka, medpubsub_platform.credentials, "observer")
    observer = Observer(kafka, sampler=sample)
    observer.start()
    try:
        yield observer
    finally:
        observer.stop()


@pytest.fixture
def medpubsub_report_dir(request: pytest.FixtureRequest) -> Path:
    """This test's report directory (report.json, plots, attachments)."""
    directory = _report_root(request.config) / _safe_name(request.node.nodeid)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def medpubsub_system(
    request: pytest.FixtureRequest,
    medpubsub_platform: Platform,
    medpubsub_observer: Observer,
    medpubsub_report_dir: Path,
) -> Iterator[MedpubsubSystem]:
    """The running system: scale_patients(n), medicine_jobs(), kill_medicine(n), lag(), observer.

    Before the test, the machine is given time to settle (`medpubsub_quiet_*`). After it, the
    load is stopped, the makers drain, the SLOs are checked and the report is written; an SLO
    failure fails the test.
    """
    if medpubsub_platform.patients():
        medpubsub_platform.scale_patients(0)
    _settle(request.config)
    system = MedpubsubSystem(medpubsub_platform, medpubsub_observer, medpubsub_report_dir)
    yield system
    if medpubsub_platform.patients():  # the test failed before the plugin drained it
        medpubsub_platform.scale_patients(0)


# -- SLOs and reports ----------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A design marker naming no design would skip its test under every design, silently: a
    usage error before anything starts."""
    for item in items:
        for name in ("medpubsub_design", "medpubsub_design_slo"):
            for marker in item.iter_markers(name):
                try:
                    designs.design(str(marker.args[0]) if marker.args else "")
                except designs.UnknownDesign as error:
                    raise pytest.UsageError(f"{item.nodeid}: {name}: {error}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked for another design, or one this design leaves out, before its
    fixtures bring a platform up."""
    design = str(item.config.getoption("--medpubsub-design"))
    marker = item.get_closest_marker("medpubsub_design")
    if marker is not None:
        wanted = str(marker.args[0]) if marker.args else ""
        if wanted != design:
            pytest.skip(f"runs under --medpubsub-design={wanted} (this run: {design})")
    cause = designs.design(design).left_out.get(item.nodeid)
    if cause is not None and not item.config.getoption("--medpubsub-run-left-out"):
        pytest.skip(
            f"the {design} design leaves this out: {cause} (--medpubsub-run-left-out runs it)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After a passing test body: drain, check the SLOs, write the report (failures included)."""
    system = _system_of(item)
    try:
        result = yield
    except BaseException:
        if system is not None:
            _finish(item, system, check=False)
        raise
    if system is not None:
        _finish(item, system, check=True)
    return result


def _settle(config: pytest.Config) -> None:
    """Wait, within the ini bounds, for the machine to be quiet before a test's load starts."""
    on_cluster = str(config.getoption("--medpubsub-cluster")) != factory.LOCAL
    try:
        (percent, _, _), (timeout, _, _) = _QUIET_INI
        quiet = QuietWait.parse(
            str(config.getini(percent)), str(config.getini(timeout)), on_cluster
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    settle(quiet)


def _finish(item: pytest.Item, system: MedpubsubSystem, check: bool) -> None:
    spec = _slo_spec(item)
    design = str(item.config.getoption("--medpubsub-design"))
    settings = _run_settings(item, design, system.warm_makers)
    ended = end_run(
        system.platform,
        system.observer,
        system.started,
        system.report_dir,
        drain_timeout_s=float(str(item.config.getini(_DRAIN_INI[0]))),
        spec=spec,
        design=design,
        settings=settings,
        facts=system.report_facts,
    )
    result, path = ended.slo, ended.report
    for name, value in junit_properties(ended.summary, result, settings):
        item.user_properties.append((name, value))
    item.config.stash[_RESULTS].append((item.nodeid, path, result))
    item.stash[_REPORT_OF_ITEM] = path
    always = item.config.getoption("--medpubsub-diagnostics") == "always"
    if not result.passed or not check or always:
        system.platform.dump_diagnostics(system.report_dir / "diagnostics")
        write_run_page(system.report_dir)  # again, now with links to the diagnostics
    if check and not result.passed:
        context = failure_context(ended.summary, result, system.host_cpu)
        pytest.fail(
            f"SLOs not met (report: {path}):\n{result.failure_message()}\n{context}".rstrip(),
            pytrace=False,
        )


def _run_settings(item: pytest.Item, design: str, warm_makers: int) -> dict[str, object]:
    config = item.config
    return run_settings(
        name=item.nodeid,
        platform=str(config.getoption("--medpubsub-cluster")),
        design=design,
        secure=bool(config.getoption("--medpubsub-secure")),
        external_kafka=config.getoption("--medpubsub-kafka"),
        warm_makers=warm_makers,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With pytest-html active, the test's row carries its SLO table and plots as extras."""
    report = yield
    path = item.stash.get(_REPORT_OF_ITEM, None)
    html_active = getattr(item.config.option, "htmlpath", None) is not None  # pytest --html=…
    if report.when == "call" and path is not None and html_active:
        from pytest_medpubsub.reports.html_extras import extras_for

        report.extras = [*getattr(report, "extras", []), *extras_for(path)]  # type: ignore[attr-defined]
    return report


@pytest.hookimpl(optionalhook=True)  # pytest-html's hooks: only called when it is installed
def pytest_html_results_table_header(cells: list[str]) -> None:
    """An SLO column in pytest-html's table, next to its result column."""
    cells.insert(2, '<th class="sortable" data-column-type="slo">SLO</th>')


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    properties = dict(report.user_properties)
    verdict = "–"
    if "slo_passed" in properties:
        verdict = "SLO met" if properties["slo_passed"] else "SLO FAILED"
    cells.insert(2, f'<td class="col-slo">{verdict}</td>')


def _slo_spec(item: pytest.Item) -> SloSpec:
    """The ini defaults, then the test's marker, then the design's latency allowance on top
    (the design's `latency_allowance_s`: what it costs every order by nature)."""
    config = item.config
    defaults = SloSpec.model_validate(
        {field: str(config.getini(ini_name)) for field, (ini_name, _, _) in _SLO_INI.items()}
    )
    allowance = designs.design(str(config.getoption("--medpubsub-design"))).latency_allowance_s
    marker = item.get_closest_marker("medpubsub_slo")
    try:
        spec = (
            defaults
            if marker is None
            else SloSpec.from_marker(marker.args, marker.kwargs, defaults)
        )
        design = str(config.getoption("--medpubsub-design"))
        for own in item.iter_markers("medpubsub_design_slo"):
            if own.args[:1] == (design,):
                # The test's own bounds for this design, measured: no allowance on top.
                return SloSpec.from_marker(own.args[1:], own.kwargs, spec)
    except ValueError as error:
        raise pytest.UsageError(f"{item.nodeid}: medpubsub_slo: {error}") from None
    return spec.allowing(allowance)


def _system_of(item: pytest.Item) -> MedpubsubSystem | None:
    funcargs = getattr(item, "funcargs", {})
    system = funcargs.get("medpubsub_system")
    return system if isinstance(system, MedpubsubSystem) else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    results = terminalreporter.config.stash.get(_RESULTS, [])
    if not results:
        return
    terminalreporter.section("medpubsub reports")
    for nodeid, path, result in results:
        verdict = "no SLO" if result is None else ("SLO met" if result.passed else "SLO FAILED")
        terminalreporter.write_line(f"{verdict:10} {nodeid}: {path.parent / 'report.html'}")
    index = write_index(
        _report_root(terminalreporter.config),
        [(nodeid, path) for nodeid, path, _ in results],
        "scenarios of this session",
    )
    terminalreporter.write_line(f"index: {index}")


# -- helpers -------------------------------------------------------------------------------------


def _platform_options(config: pytest.Config) -> factory.PlatformOptions:
    # The pid as well: pytest-xdist's workers are processes whose configs may share an address.
    run_dir = Path(tempfile.gettempdir()) / f"medpubsub-run-{os.getpid()}-{id(config):x}"
    return factory.PlatformOptions(
        cluster=str(config.getoption("--medpubsub-cluster")),
        run_dir=run_dir,
        report_dir=_report_root(config),
        keep=bool(config.getoption("--medpubsub-keep")),
        image_registry=config.getoption("--medpubsub-image-registry"),
        strimzi_manifest=config.getoption("--medpubsub-strimzi-manifest"),
        keda_manifest=config.getoption("--medpubsub-keda-manifest"),
        state_file=run_dir / "local.json",
        kafka=config.getoption("--medpubsub-kafka"),
        containerd=config.getoption("--medpubsub-containerd"),
        design=str(config.getoption("--medpubsub-design")),
    )


def _report_root(config: pytest.Config) -> Path:
    explicit: Path | None = config.getoption("--medpubsub-report")
    return explicit if explicit is not None else config.rootpath / "build" / "medpubsub-report"


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


# -- load and chaos (issue 5) --------------------------------------------------------------------
# Locust runs as a child process (its gevent monkey-patching must stay out of this process);
# pytest_medpubsub.load imports neither Locust nor gevent.

from pytest_medpubsub.load import LocustLoad  # noqa: E402 - this section's own import


@pytest.fixture
def medpubsub_locust(medpubsub_system: MedpubsubSystem) -> LocustLoad:
    """Locust patients (load/patients.py) against the system: `.run("1x10,3x15,0x5")` runs a
    ramp (patients x seconds) headless and puts Locust's figures into the test's report."""
    return LocustLoad(medpubsub_system)


# -- end of load and chaos -----------------------------------------------------------------------
