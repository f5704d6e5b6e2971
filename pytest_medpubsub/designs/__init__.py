"""The designs: who starts the medicine makers (`base.Design`), one module each.

- `scaledjob`: KEDA's ScaledJob on the orders' lag (the default);
- `dispatcher`: one consumer that starts a maker per order.

Everything that differs between them is asked of the design object (`design(name)`) rather
than decided by comparing names in the platforms, the plugin, the CLI or the bench; only the
`medpubsub_design` markers compare names, which is what they are for.
"""

from __future__ import annotations

from pytest_medpubsub.designs import dispatcher, scaledjob
from pytest_medpubsub.designs.base import Design

DESIGNS: dict[str, Design] = {d.name: d for d in (scaledjob.DESIGN, dispatcher.DESIGN)}
NAMES = tuple(DESIGNS)
DEFAULT = scaledjob.NAME


class UnknownDesign(ValueError):
    """A design name no module of this package has; the message says which there are."""


def described() -> str:
    """Every design with its summary, the default marked: for `--help`."""
    return "; ".join(
        f"{d.name} ({d.summary}{', default' if d.name == DEFAULT else ''})"
        for d in DESIGNS.values()
    )


def design(name: str) -> Design:
    """The design called `name`; `UnknownDesign` (one sentence) for any other name."""
    try:
        return DESIGNS[name]
    except KeyError:
        raise UnknownDesign(f"unknown design {name!r}; choose one of {', '.join(NAMES)}") from None


__all__ = [
    "DEFAULT",
    "DESIGNS",
    "NAMES",
    "Design",
    "UnknownDesign",
    "described",
    "design",
    "dispatcher",
    "scaledjob",
]
