"""The harness's commands: `medpubsub kafka | up | status | down | demo`.

Registered into the `medpubsub` command by `medpubsub.cli` when the harness is installed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_medpubsub.kafka.jars import KAFKA_VERSION, KafkaUnavailable, libs_dir


def register(commands: Any) -> None:
    """Add the harness commands to the `medpubsub` sub-command parser."""
    kafka = commands.add_parser(
        "kafka",
        help=f"run an embedded Apache Kafka {KAFKA_VERSION} in the foreground",
        description=(
            f"Run a single-node Apache Kafka {KAFKA_VERSION} (KRaft) on 127.0.0.1 with the "
            "system's topics created, until Ctrl-C / SIGTERM. Prints bootstrap=HOST:PORT once "
            "clients can connect. Jars come from KAFKA_HOME or are fetched once by Maven."
        ),
    )
    kafka.add_argument(
        "--data-dir",
        type=Path,
        help="keep the broker's data here (reused on the next start); default: a temporary dir",
    )
    kafka.add_argument("--port", type=int, help="client port (default: a free port)")
    kafka.add_argument(
        "--resolve-only",
        action="store_true",
        help="only fetch the jars into the cache (what `make install` does), then exit",
    )
    kafka.set_defaults(func=run_kafka)


def run_kafka(arguments: argparse.Namespace) -> int:
    from pytest_medpubsub.kafka.broker import running_broker

    try:
        if arguments.resolve_only:
            print(f"kafka jars: {libs_dir()}")
            return 0
        stop = _stop_on_signals()
        with running_broker(data_dir=arguments.data_dir, port=arguments.port) as (kafka, _):
            print(f"bootstrap={kafka.kafka_bootstrap}", flush=True)
            stop.wait()
        return 0
    except KafkaUnavailable as error:
        print(f"medpubsub kafka: {error}", file=sys.stderr)
        return 2


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so the foreground command can stop cleanly."""
    stop = threading.Event()

    def handler(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
