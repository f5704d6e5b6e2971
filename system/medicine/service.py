"""One medicine job: take orders while workers are free, make each exactly once, exit when done.

A job joins the group (KIP-848, so its arrival does not stop the other makers) and polls without
pause; every record is made on an order thread in a transaction of its own while the maker has
free workers (maker.py). It leaves after MEDICINE_MAX_ORDERS orders, or once no order came for
MEDICINE_IDLE_TIMEOUT_SECONDS since its partitions were registered, so KEDA's Jobs scale in when
the orders stop; one of the MEDICINE_WARM_MAKERS that the group keeps at rest stays (warm.py).

Exit status: 0 when done (MEDICINE_MAX_ORDERS orders made), idle (no record for
MEDICINE_IDLE_TIMEOUT_SECONDS) or stopped (SIGTERM / SIGINT; orders being made are left
uncommitted);
1 when Kafka failed in a way this process cannot recover from (fenced, fatal error, a transaction
that timed out or cannot be aborted, a commit or abort that librdkafka does not return from in time
(see watchdog.py), or a record that keeps failing); 2 for a configuration error (the CLI).
Dead-lettered records do not count as orders made: a job sent a bad record carries on to a real
order.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient

from medpubsub.kafka_clients import common_config, consumer_config
from medpubsub.medicine.idle import IdleClock
from medpubsub.medicine.maker import Destinations, Maker, MakerFailed
from medpubsub.medicine.producers import (
    PartitionProducers,
    fence_delay_s,
    transactional_factory,
)
from medpubsub.medicine.readiness import ReadinessFile
from medpubsub.medicine.sweep import Sweep
from medpubsub.medicine.warm import WarmFloor
from medpubsub.settings import KafkaSettings, MedicineSettings, load
from medpubsub.shutdown import StopRequest, start_service

# How long one poll may block when nothing is in flight; bounds the reaction time to SIGTERM
# and to the idle timeout.
POLL_INTERVAL_S = 0.2
# While orders are in flight: how soon released workers take a waiting record.
BUSY_POLL_INTERVAL_S = 0.05
log = logging.getLogger("medpubsub.medicine")


def maker_name(environ: Mapping[str, str], token: str | None = None) -> str:
    """This maker's name, unique among all makers (logs, tabs and client ids carry it).

    In Kubernetes (KUBERNETES_SERVICE_HOST is set) it is the pod name (HOSTNAME), unique per Job
    pod. Elsewhere a host name and a pid are not enough: containers on one host network share the
    host name and each is pid 1, and so are processes in separate pid namespaces, and a tab must say
    which maker made it. So a random token is added: `<host>-<pid>-<token>`.
    """
    if environ.get("KUBERNETES_SERVICE_HOST") and environ.get("HOSTNAME"):
        return environ["HOSTNAME"]
    return f"{socket.gethostname()}-{os.getpid()}-{token or secrets.token_hex(3)}"


def run() -> int:
    """Run one medicine job (see the module's docstring for the exit status)."""
    kafka = load(KafkaSettings)
    settings = load(MedicineSettings)
    stop = start_service()
    name = maker_name(os.environ)
    producers = PartitionProducers(
        transactional_factory(kafka, name),
        settings.group_id,
        stop.is_set,
        sweep=Sweep((kafka.deliveries_topic, kafka.dlq_topic)),
        fence_delay_s=fence_delay_s(settings.tab_seconds),
    )
    consumer = Consumer(
        consumer_config(kafka, client_id=name, group_id=settings.group_id)
        # Partitions start where on_assign says; a partition that would start anywhere else (its
        # offset out of range) must not be read again from its beginning.
        | {"auto.offset.reset": "error"}
    )
    maker = Maker(
        name,
        consumer=consumer,
        producers=producers,
        destinations=Destinations(kafka.deliveries_topic, kafka.dlq_topic),
        tab_seconds=settings.tab_seconds,
        max_workers=settings.max_workers,
        max_orders_in_flight=settings.max_orders_in_flight,
        max_orders=settings.max_orders,
        stopping=stop.is_set,
    )
    # A new partition starts at its stable committed offset and is registered under its
    # transactional id meanwhile; a revoked one goes at once, its orders in flight going on.
    maker.subscribe(kafka.orders_topic)
    print(
        f"medicine {name}: taking orders from {kafka.orders_topic} as {settings.group_id}"
        f" at {kafka.kafka_bootstrap}",
        flush=True,
    )
    readiness = ReadinessFile(settings.ready_file)
    warm = WarmFloor(
        settings.group_id,
        settings.warm_makers,
        settings.warm_seconds,
        lambda: AdminClient(common_config(kafka, f"{name}-group")),
    )
    try:
        reason, status = _serve(
            consumer, maker, settings, stop, producers=producers, readiness=readiness, warm=warm
        )
    finally:
        readiness.clear()
        maker.settle_all()
        maker.close()  # leaves the group at once, so the partitions move on without waiting
    print(
        f"medicine {name}: {reason} after {maker.tally.made} orders and"
        f" {maker.tally.dead_lettered} dead letters",
        flush=True,
    )
    return status


def _serve(
    consumer: Consumer,
    maker: Maker,
    settings: MedicineSettings,
    stop: StopRequest,
    *,
    producers: PartitionProducers,
    readiness: ReadinessFile,
    warm: WarmFloor,
) -> tuple[str, int]:
    """Hand records to the maker until done, idle, stopped or failed: (why, exit status)."""
    started = time.monotonic()
    idle = IdleClock(started)
    readiness.clear()  # a file left by an earlier process in the same place says nothing of us
    while True:
        try:
            maker.tick()
        except MakerFailed as failure:
            maker.failure = maker.failure or str(failure)
        readiness.update(producers.ready_keys())
        if maker.failure is not None:
            log.error("%s: %s", maker.name, maker.failure)
            return "failed", 1
        if stop.is_set():
            return f"stopped by {stop.reason}", 0
        registering = producers.registering()
        if not (maker.busy or registering or maker.taking_orders):
            return "done", 0
        # Registering partitions pauses the idle time without resetting it (idle.py).
        idle_s = idle.tick(time.monotonic(), busy=maker.busy, registering=registering)
        if idle_s >= settings.idle_timeout_seconds:
            now = time.monotonic()
            if not warm.stays(consumer.memberid() or "", now - started):
                return f"idle for {idle_s:.1f} s", 0
            # Said at every idle timeout of a rest: each is a look at the group that kept it.
            log.info("%s: idle for %.1f s, staying as a warm maker", maker.name, idle_s)
            idle.reset(now)
            idle_s = 0.0
        wait_s = BUSY_POLL_INTERVAL_S if maker.busy else POLL_INTERVAL_S
        record = consumer.poll(min(wait_s, settings.idle_timeout_seconds - idle_s))
        if maker.leave_if_asked():
            return "failed", 1
        if record is None or stop.is_set():  # a record taken while stopping stays uncommitted
            continue
        error = record.error()
        if error is not None:
            if error.fatal() or error.code() == KafkaError._AUTO_OFFSET_RESET:
                # No offset to start at (out of range): reading from the beginning would make
                # orders twice; the next job starts the partition at its committed offset.
                log.error("%s: consumer: %s", maker.name, error)
                return "failed", 1
            log.warning("%s: consumer: %s", maker.name, error)
            continue
        maker.offer(record)
        idle.reset(time.monotonic())
