"""The `medpubsub` command.

`patient` and `medicine` are what the service images run and need only this package. Other
commands arrive through the `medpubsub.commands` entry-point group, the way pytest finds its
plugins: the harness registers `kafka`, `up`, `status`, `down` and `demo` there when it is
installed. The product never names the harness, so an image stays free of its dependencies and
another distribution can add a command without a change here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from medpubsub.settings import ConfigError

Command = Callable[[argparse.Namespace], int]

COMMANDS_GROUP = "medpubsub.commands"
"""Entry points of this group are `register(subparsers)` functions that add commands."""


def _run_patient(_: argparse.Namespace) -> int:
    from medpubsub.patient.service import run

    _check_access("patient")
    return run()


def _run_medicine(_: argparse.Namespace) -> int:
    from medpubsub.medicine.service import run

    _check_access("medicine")
    return run()


def _check_access(service: str) -> None:
    """A refused login (or no ACL for the orders topic) is a configuration error: one sentence,
    exit 2, before the service starts retrying forever (see medpubsub.access)."""
    from medpubsub.access import check_access
    from medpubsub.settings import KafkaSettings, load

    kafka = load(KafkaSettings)
    check_access(kafka, service, kafka.orders_topic)


def _run_make_order(_: argparse.Namespace) -> int:
    from medpubsub.medicine.one_order import run

    return run()


def _run_dispatcher(_: argparse.Namespace) -> int:
    from medpubsub.dispatcher.service import run

    return run()


@dataclass(frozen=True)
class Service:
    """One service command: what `--help` says of it and the function that runs it."""

    name: str
    help: str
    description: str
    run: Command


SERVICE_COMMANDS = (
    Service(
        "patient",
        help="run one patient: an order of 1-30 tabs every ORBITAL_ORDER_PERIOD_SECONDS",
        description="Publish one order per period to the orders topic until SIGTERM / SIGINT.",
        run=_run_patient,
    ),
    Service(
        "medicine",
        help="run one medicine job: take MEDICINE_MAX_ORDERS orders, make their tabs, exit",
        description=(
            "Take orders from the orders topic, make each order's tabs in parallel (one thread a "
            "tab) and publish them exactly once; exit when MEDICINE_MAX_ORDERS are done or no "
            "order came for MEDICINE_IDLE_TIMEOUT_SECONDS."
        ),
        run=_run_medicine,
    ),
    Service(
        "make-order",
        help="make the one order in MEDICINE_ORDER exactly once (what the dispatcher starts)",
        description=(
            "Make the tabs of the order the dispatcher put in MEDICINE_ORDER (its record value "
            "and coordinates) in one transaction, unless that order was already made; exit."
        ),
        run=_run_make_order,
    ),
    Service(
        "dispatcher",
        help="run the dispatcher: consume orders and start one maker per order",
        description=(
            "Consume the orders topic in the DISPATCHER_GROUP_ID group and start a maker for "
            "each order (a process, or a Kubernetes Job with DISPATCHER_LAUNCHER=job); commit an "
            "order once its maker exists, start failed makers again, dead-letter bad orders."
        ),
        run=_run_dispatcher,
    ),
)
SERVICES = tuple(service.name for service in SERVICE_COMMANDS)


def build_parser(with_extensions: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medpubsub",
        description=(
            "An on-demand medicine-tab factory on Kafka: patients order tabs, medicine makers "
            "make them; and the harness that runs it locally and proves it under load and faults."
        ),
        epilog="Services read their settings from the environment (see README, 'Configuration').",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for service in SERVICE_COMMANDS:
        command = commands.add_parser(
            service.name, help=service.help, description=service.description
        )
        command.set_defaults(func=service.run)
    if not with_extensions:
        return parser
    for entry_point in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = entry_point.load()
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A maker starts for every order: skip loading the extra commands (~0.2 s) for the services.
    with_extensions = not (argv and argv[0] in SERVICES)
    arguments = build_parser(with_extensions).parse_args(argv)
    command: Command = arguments.func
    try:
        return command(arguments)
    except ConfigError as error:
        print(f"medpubsub {arguments.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
