"""One medicine job: take up to MEDICINE_MAX_ORDERS orders, make them exactly once, exit.

KEDA runs one Job per unit of lag, so a job is short-lived: it joins the group (KIP-848, so its
arrival does not stop the other makers), takes one record at a time and polls again only once that
record's transaction is committed, so it never holds more than one order and, as a KIP-848
partition is only revoked when its owner polls, an order in progress keeps its partition.

Exit status: 0 when done (MEDICINE_MAX_ORDERS orders made), idle (no record for
MEDICINE_IDLE_TIMEOUT_SECONDS) or stopped (SIGTERM / SIGINT; an open transaction is aborted);
1 when Kafka failed in a way this process cannot recover from (fenced, fatal error, a transaction
that timed out or cannot be aborted, a commit or abort that librdkafka does not return from in time
(see watchdog.py), or a record that keeps failing); 2 for a configuration error (the CLI).
Dead-lettered records do not count as orders made: a job sent a bad record carries on to a real
order, so KEDA's lag arithmetic (one job per order) still converges.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from medpubsub.kafka_clients import consumer_config, producer_config
from medpubsub.medicine.maker import Destinations, Maker, MakerFailed, Outcome
from medpubsub.medicine.pool import ThreadPoolController
from medpubsub.messages import MAX_TABS
from medpubsub.settings import KafkaSettings, MedicineSettings, load
from medpubsub.shutdown import StopRequest

# How long one poll may block; bounds the reaction time to SIGTERM and to the idle timeout.
POLL_INTERVAL_S = 0.2
# How long the job keeps trying to reach the transaction coordinator at start.
INIT_TIMEOUT_S = 60.0
# An order whose transaction fails this often in a row is left to the next job.
MAX_ATTEMPTS = 3
# Room in the transaction timeout for the commit round trips beyond the tab-making time.
TRANSACTION_MARGIN_S = 8.0
MIN_TRANSACTION_TIMEOUT_MS = 10_000

log = logging.getLogger("medpubsub.medicine")


def maker_name(environ: Mapping[str, str]) -> str:
    """This maker's name, unique among the running makers (it is also the transactional id).

    In Kubernetes (KUBERNETES_SERVICE_HOST is set) it is the pod name (HOSTNAME), unique per Job
    pod. Elsewhere makers are processes on one host, which may share an exported HOSTNAME, so the
    name is `<host name>-<pid>`.
    """
    if environ.get("KUBERNETES_SERVICE_HOST") and environ.get("HOSTNAME"):
        return environ["HOSTNAME"]
    return f"{socket.gethostname()}-{os.getpid()}"


def transaction_timeout_ms(settings: MedicineSettings) -> int:
    """Long enough for the largest order (in waves when workers are capped), and ≥ 10 s.

    It is also how long a killed maker's open transaction blocks read_committed readers of the
    partitions it wrote to, so it is not made any longer than that.
    """
    waves = math.ceil(MAX_TABS / settings.max_workers)
    seconds = waves * settings.tab_seconds + TRANSACTION_MARGIN_S
    return max(MIN_TRANSACTION_TIMEOUT_MS, math.ceil(seconds * 1000))


@dataclass
class Tally:
    made: int = 0
    dead_lettered: int = 0


def run() -> int:
    """Run one medicine job (see the module's docstring for the exit status)."""
    kafka = load(KafkaSettings)
    settings = load(MedicineSettings)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    stop = StopRequest()
    stop.install()
    name = maker_name(os.environ)
    producer = Producer(
        producer_config(
            kafka,
            client_id=name,
            transactional_id=f"medicine-{name}",
            transaction_timeout_ms=transaction_timeout_ms(settings),
        )
    )
    try:
        if not _init_transactions(producer, stop):
            return 0
    except MakerFailed as failure:
        log.error("%s: %s", name, failure)
        return 1
    consumer = Consumer(consumer_config(kafka, client_id=name, group_id=settings.group_id))
    maker = Maker(
        name,
        consumer=consumer,
        producer=producer,
        destinations=Destinations(kafka.deliveries_topic, kafka.dlq_topic),
        pool=ThreadPoolController(settings.max_workers),
        tab_seconds=settings.tab_seconds,
        stopping=stop.is_set,
    )
    # The maker finishes and commits an order before its partition is handed over.
    consumer.subscribe([kafka.orders_topic], on_revoke=maker.on_revoke)
    print(
        f"medicine {name}: taking orders from {kafka.orders_topic} as {settings.group_id}"
        f" at {kafka.kafka_bootstrap}",
        flush=True,
    )
    tally = Tally()
    try:
        reason, status = _serve(consumer, maker, settings, stop, tally)
    finally:
        consumer.close()  # leaves the group at once, so the partitions move on without waiting
    print(
        f"medicine {name}: {reason} after {tally.made} orders and"
        f" {tally.dead_lettered} dead letters",
        flush=True,
    )
    return status


def _init_transactions(producer: Producer, stop: StopRequest) -> bool:
    """Register with the transaction coordinator; False when stopped before it answered."""
    deadline = time.monotonic() + INIT_TIMEOUT_S
    while not stop.is_set():
        try:
            producer.init_transactions(2.0)
            return True
        except KafkaException as exception:
            error = exception.args[0] if exception.args else None
            retriable = isinstance(error, KafkaError) and error.retriable()
            if not retriable or time.monotonic() >= deadline:
                raise MakerFailed(f"cannot start transactions: {exception}") from exception
    return False


def _serve(
    consumer: Consumer, maker: Maker, settings: MedicineSettings, stop: StopRequest, tally: Tally
) -> tuple[str, int]:
    """Take records one at a time until done, idle, stopped or failed: (why, exit status)."""
    last_record = time.monotonic()
    attempts = 0
    while True:
        if stop.is_set():
            return f"stopped by {stop.reason}", 0
        if settings.max_orders and tally.made >= settings.max_orders:
            return "done", 0
        idle_s = time.monotonic() - last_record
        if idle_s >= settings.idle_timeout_seconds:
            return f"idle for {idle_s:.1f} s", 0
        record = consumer.poll(min(POLL_INTERVAL_S, settings.idle_timeout_seconds - idle_s))
        if record is None or stop.is_set():  # a record taken while stopping stays uncommitted
            continue
        error = record.error()
        if error is not None:
            if error.fatal():
                log.error("%s: fatal consumer error: %s", maker.name, error)
                return "failed", 1
            log.warning("%s: consumer: %s", maker.name, error)
            continue
        try:
            outcome = maker.handle(record)
        except MakerFailed as failure:
            log.error("%s: %s", maker.name, failure)
            return "failed", 1
        last_record = time.monotonic()
        if outcome is Outcome.MADE:
            tally.made += 1
        elif outcome is Outcome.DEAD_LETTERED:
            tally.dead_lettered += 1
        attempts = attempts + 1 if outcome is Outcome.RETRY else 0
        if attempts >= MAX_ATTEMPTS:
            log.error(
                "%s: giving the order up to the next job after %d attempts", maker.name, attempts
            )
            return "failed", 1
