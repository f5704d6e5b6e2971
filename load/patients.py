"""Locust patients: every Locust user is one patient ordering tabs over Kafka.

    locust -f load/patients.py --headless -u 3 -r 3 -t 20s            # against `medpubsub up`
    MEDPUBSUB_RAMP=1x10,5x20,0x5 locust -f load/patients.py --headless  # a ramp of patients

Orders are built by the patient service's own `build_order` and produced with its producer
settings (`order_producer_config`: idempotent, `acks=all`), one per `ORBITAL_ORDER_PERIOD_SECONDS`
per user. Every produce is reported to Locust as a `kafka` request named after the topic: its
response time is the acknowledgement latency, and a delivery failure (or no acknowledgement within
`MEDPUBSUB_LOAD_ACK_TIMEOUT_SECONDS`) is a failure, which makes Locust exit 1.

Kafka is `MEDPUBSUB_KAFKA_BOOTSTRAP` (with the other `MEDPUBSUB_*` client settings), or else the
running local system found through `.medpubsub/local.json` (`MEDPUBSUB_STATE_FILE`). With
`MEDPUBSUB_RAMP` set, a `LoadTestShape` runs its steps (patients × seconds, e.g. `1x10,5x20,0x5`)
and Locust's `-u/-r/-t` do not apply; without it they do.

Locust runs on gevent, and librdkafka's calls are C calls that gevent cannot interrupt: a blocking
`flush()` or `poll(timeout)` would freeze every patient at once. So a patient only ever calls
`produce()` and `poll(0)`, and yields to the other greenlets with `gevent.sleep` until its order's
delivery report has arrived (or its deadline passed).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import gevent
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from locust import LoadTestShape, User, constant_pacing, events, task
from locust.env import Environment

from medpubsub.kafka_clients import order_producer_config
from medpubsub.messages import Order
from medpubsub.patient.ordering import build_order
from medpubsub.settings import ConfigError, KafkaSettings, PatientSettings, load
from pytest_medpubsub import state
from pytest_medpubsub.kafka.security import Credentials
from pytest_medpubsub.load_ramp import (
    ACK_TIMEOUT_ENV,
    ACKS_FILE_ENV,
    RAMP_ENV,
    STOP_FILE_ENV,
    SUMMARY_FILE_ENV,
    RampError,
    RampStep,
    parse_ramp,
    step_at,
)

log = logging.getLogger("medpubsub.load")

REQUEST_TYPE = "kafka"
DEFAULT_ACK_TIMEOUT_S = 30.0
# How long a stopping patient waits for its orders in flight to be acknowledged.
STOP_FLUSH_S = 10.0
# How long a new patient waits for Kafka's metadata before its first order (at most the ack
# timeout: an unreachable Kafka must show as failed orders, not as a patient that never ordered).
CONNECT_TIMEOUT_S = 10.0
# A ramp step starts (or stops) all of its patients at once.
SPAWN_RATE = 100.0
# Delivery reports are polled every 1 ms at first, backing off to 20 ms: an acknowledgement on
# this machine takes a few ms, and its latency comes from librdkafka, not from this loop.
_POLL_FIRST_S = 0.001
_POLL_MAX_S = 0.02
# librdkafka logs every failed reconnect (several a second while a broker restarts); `error_cb`
# already reports each distinct error once, so its own log only shows what is critical.
_LIBRDKAFKA_LOG = logging.getLogger("medpubsub.load.librdkafka")
_LIBRDKAFKA_LOG.setLevel(logging.CRITICAL)


def _fail(message: str, status: int) -> NoReturn:
    """One sentence on stderr and an exit status, no traceback (a user's mistake, not a bug)."""
    sys.stderr.write(f"load/patients.py: {message}\n")
    raise SystemExit(status)


def _ramp() -> tuple[RampStep, ...] | None:
    spec = os.environ.get(RAMP_ENV)
    if spec is None:
        return None
    try:
        return parse_ramp(spec)
    except RampError as error:
        _fail(str(error), 2)


def _ack_timeout_s() -> float:
    text = os.environ.get(ACK_TIMEOUT_ENV, str(DEFAULT_ACK_TIMEOUT_S))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        _fail(f"{ACK_TIMEOUT_ENV}={text!r} is invalid: give a positive number of seconds", 2)
    return value


def _patient_settings() -> PatientSettings:
    try:
        return load(PatientSettings)
    except ConfigError as error:
        _fail(str(error), 2)


# Read once at import: the pacing of the User class and the shape depend on them.
PATIENT = _patient_settings()
RAMP = _ramp()
ACK_TIMEOUT_S = _ack_timeout_s()


@dataclass(frozen=True)
class Target:
    """Where the patients order: Kafka settings and where they came from (for the log)."""

    kafka: KafkaSettings
    source: str


def resolve_target() -> Target:
    """`MEDPUBSUB_KAFKA_BOOTSTRAP`, else the running local system; exits with a sentence."""
    if os.environ.get("MEDPUBSUB_KAFKA_BOOTSTRAP"):
        try:
            return Target(load(KafkaSettings), "MEDPUBSUB_KAFKA_BOOTSTRAP")
        except ConfigError as error:
            _fail(str(error), 2)
    try:
        local = state.read()
    except state.NoLocalSystem as error:
        _fail(f"set MEDPUBSUB_KAFKA_BOOTSTRAP, or {error}", 1)
    try:
        kafka = KafkaSettings(
            kafka_bootstrap=local.bootstrap,
            orders_topic=local.orders_topic,
            deliveries_topic=local.deliveries_topic,
            dlq_topic=local.dlq_topic,
        )
        if local.credentials_file is not None:  # a secure broker: order as the patient identity
            kafka = Credentials.read(Path(local.credentials_file)).settings(kafka, "patient")
    except ValueError as error:  # e.g. SASL variables half set in this shell
        _fail(f"cannot reach the local system at {local.bootstrap}: {error}", 2)
    except ConfigError as error:
        _fail(str(error), 2)
    return Target(kafka, str(state.default_path()))


class _Acknowledgements:
    """Appends the id of every acknowledged order to `MEDPUBSUB_LOAD_ACKS_FILE`, when set, so
    that a harness can check that each one was made (nothing acknowledged may be lost)."""

    def __init__(self) -> None:
        self._handle: IO[str] | None = None

    def open(self, path: str | None) -> None:
        if path:
            self._handle = Path(path).open("a", buffering=1)  # noqa: SIM115 - closed on quit

    def record(self, order_id: str) -> None:
        if self._handle is not None:
            self._handle.write(f"{order_id}\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class _Run:
    """What this Locust process found at its start (set once, by the init event)."""

    target: Target | None = None
    environment: Environment | None = None


_run = _Run()
_acknowledgements = _Acknowledgements()
_patient_numbers = itertools.count(1)


def _on_init(environment: Environment, **_: Any) -> None:
    """Find Kafka before any user starts, so a missing system is one sentence, not N errors."""
    target = _run.target = resolve_target()
    _run.environment = environment
    _acknowledgements.open(os.environ.get(ACKS_FILE_ENV))
    log.info(
        "patients order %s-%s tabs every %g s to %s at %s (from %s)",
        PATIENT.min_tabs_count,
        PATIENT.max_tabs_count,
        PATIENT.order_period_seconds,
        target.kafka.orders_topic,
        target.kafka.kafka_bootstrap,
        target.source,
    )


def _on_quit(**_: Any) -> None:
    """Write the final figures: Locust's CSV is rewritten once a second and not at its end, so
    the orders of the last second would be missing from it."""
    _acknowledgements.close()
    summary_file = os.environ.get(SUMMARY_FILE_ENV)
    if summary_file and _run.environment is not None:
        Path(summary_file).write_text(json.dumps(_final_figures(_run.environment)) + "\n")


def _final_figures(environment: Environment) -> dict[str, Any]:
    """The totals (in the form of `pytest_medpubsub.load.LocustStats`) and the errors."""
    return {
        "stats": _totals(environment),
        "errors": [
            f"{error.occurrences} x {error.error}" for error in environment.stats.errors.values()
        ],
    }


def _totals(environment: Environment) -> dict[str, Any]:
    total = environment.stats.total
    requests = int(total.num_requests)

    def when_any(value: Any) -> float | None:
        return float(value) if requests else None

    return {
        "requests": requests,
        "failures": int(total.num_failures),
        "median_ms": when_any(total.median_response_time),
        "average_ms": when_any(total.avg_response_time),
        "p95_ms": when_any(total.get_response_time_percentile(0.95)),
        "p99_ms": when_any(total.get_response_time_percentile(0.99)),
        "max_ms": when_any(total.max_response_time),
        "requests_per_s": when_any(total.total_rps),
    }


# Locust's EventHook is not annotated.
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.quit.add_listener(_on_quit)  # type: ignore[no-untyped-call]


class _Delivery:
    """One order in flight: reported to Locust exactly once, by the delivery report or by the
    deadline, whichever comes first."""

    def __init__(self, user: Patient, order: Order, payload_size: int):
        self.user = user
        self.order = order
        self.payload_size = payload_size
        self.sent_at = time.perf_counter()
        self.reported = False

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if self.reported:  # already counted as failed by the deadline
            log.warning("order %s was acknowledged after its deadline", self.order.order_id)
            return
        latency = message.latency() if error is None else None
        elapsed_s = latency if latency is not None else time.perf_counter() - self.sent_at
        self.report(elapsed_s, None if error is None else KafkaException(error))
        if error is None:
            _acknowledgements.record(self.order.order_id)

    def report(self, elapsed_s: float, exception: Exception | None) -> None:
        self.reported = True
        self.user.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=self.user.topic,
            response_time=elapsed_s * 1000.0,
            response_length=self.payload_size,
            exception=exception,
            context={"patient_id": self.user.patient.patient_id, "order_id": self.order.order_id},
        )


class Patient(User):
    """One patient: its own producer (as one patient pod has), one order per period."""

    wait_time = constant_pacing(PATIENT.order_period_seconds)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if _run.target is None:  # created without the init event (not by the locust command)
            raise RuntimeError("load/patients.py must be run by the locust command")
        self.kafka = _run.target.kafka
        self.topic = self.kafka.orders_topic
        self.patient = PATIENT.model_copy(
            update={"patient_id": f"{PATIENT.patient_id}-{next(_patient_numbers)}"}
        )
        self.rng = random.Random()
        self.producer: Producer | None = None
        self._in_flight: list[_Delivery] = []
        self._last_error = ""

    def on_start(self) -> None:
        config = order_producer_config(self.kafka, client_id=f"patient-{self.patient.patient_id}")
        # librdkafka gives up on an order after this long, so a failure is reported by it
        # before the patient's own deadline (which only guards against a lost report).
        config["delivery.timeout.ms"] = int(ACK_TIMEOUT_S * 1000)
        config["error_cb"] = self._on_error
        config["logger"] = _LIBRDKAFKA_LOG
        self.producer = Producer(config)
        self._connect(self.producer)

    def _connect(self, producer: Producer) -> None:
        """Fetch the orders topic's metadata before the first order, as a patient pod does long
        before it orders: otherwise the first acknowledgement of every patient includes the
        connection and the metadata round trip (~0.5 s), which says nothing about Kafka under
        load. `list_topics` blocks in C, so it runs in gevent's thread pool; a failure here is
        left to the orders to report."""
        try:
            gevent.get_hub().threadpool.apply(
                producer.list_topics,
                (self.topic,),
                {"timeout": min(CONNECT_TIMEOUT_S, ACK_TIMEOUT_S)},
            )
        except KafkaException as error:
            log.warning("patient %s: no metadata yet: %s", self.patient.patient_id, error)

    @task
    def order(self) -> None:
        """Produce one order and wait (cooperatively) for its acknowledgement."""
        producer = self._require_producer()
        order = build_order(self.patient, self.rng, time.time_ns())
        payload = order.to_bytes()
        delivery = _Delivery(self, order, len(payload))
        try:
            producer.produce(
                self.topic, payload, key=self.patient.patient_id, on_delivery=delivery.on_delivery
            )
        except (BufferError, KafkaException) as error:
            delivery.report(0.0, error)
            return
        self._in_flight.append(delivery)
        self._wait_for_reports(ACK_TIMEOUT_S + 5.0)

    def on_stop(self) -> None:
        """Stopping (end of a step, of the run): wait, bounded, for the orders in flight."""
        if self.producer is not None:
            self._wait_for_reports(STOP_FLUSH_S)
            self.producer = None

    def _wait_for_reports(self, timeout_s: float) -> None:
        """Serve delivery reports until every order in flight is reported or `timeout_s` passed;
        whatever is left then is reported as failed."""
        producer = self._require_producer()
        deadline = time.monotonic() + timeout_s
        delay = _POLL_FIRST_S
        while True:
            producer.poll(0)
            self._in_flight = [d for d in self._in_flight if not d.reported]
            if not self._in_flight:
                return
            if time.monotonic() >= deadline:
                break
            gevent.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)
        for delivery in self._in_flight:
            delivery.report(
                time.perf_counter() - delivery.sent_at,
                TimeoutError(f"no acknowledgement within {timeout_s:g} s"),
            )
        self._in_flight = []

    def _on_error(self, error: KafkaError) -> None:
        # A broker away for a while is retried by librdkafka; say so once per kind of error.
        if error.str() != self._last_error:
            self._last_error = error.str()
            log.warning("patient %s: Kafka reports %s", self.patient.patient_id, error.str())

    def _require_producer(self) -> Producer:
        if self.producer is None:
            raise RuntimeError("the patient has not started")
        return self.producer


def _stop_requested() -> bool:
    stop_file = os.environ.get(STOP_FILE_ENV)
    return stop_file is not None and Path(stop_file).exists()


if RAMP is not None:
    _STEPS = RAMP

    class PatientRamp(LoadTestShape):
        """The `MEDPUBSUB_RAMP` steps; the run ends after the last one (or at once when the
        harness asks for it through `MEDPUBSUB_LOAD_STOP_FILE`)."""

        def tick(self) -> tuple[int, float] | None:
            if _stop_requested():
                return None
            elapsed_s: float = time.perf_counter() - self.start_time  # reset when the run starts
            step = step_at(_STEPS, elapsed_s)
            return None if step is None else (step.patients, SPAWN_RATE)
