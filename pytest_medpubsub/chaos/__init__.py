"""medpubsub's Chaos Toolkit extension: faults and probes for the local system.

Experiments in `chaos/*-local.json` call these as `python` providers:
`pytest_medpubsub.chaos.actions` (kill_makers, kill_broker, wait_for_broker, start_load, stop_load)
and the designs' own (`chaos_actions` of `pytest_medpubsub.designs`: the dispatcher's
`pytest_medpubsub.chaos.dispatcher`, kill_dispatcher and wait_for_dispatcher)
and `pytest_medpubsub.chaos.probes` (orders_delivered_within, no_lost_orders, no_duplicate_tabs,
makers_scaled_in). The Kubernetes experiments use chaostoolkit-kubernetes for the faults and
the same probes, given the cluster's Kafka `bootstrap`.

`discover()` is what `chaos discover --no-install medpubsub` calls, through the `chaosmedpubsub`
package (Chaos Toolkit looks for `discover` in a distribution's first top-level package).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pytest_medpubsub import designs

__all__ = ["__version__", "discover", "load_exported_activities"]

ACTION_MODULES = (
    "pytest_medpubsub.chaos.actions",
    *(module for design in designs.DESIGNS.values() for module in design.chaos_actions),
)
PROBE_MODULES = ("pytest_medpubsub.chaos.probes",)

try:
    __version__ = version("medpubsub")
except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
    __version__ = "unknown"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """The extension's activities and, with `discover_system`, the running local system."""
    from chaoslib.discovery.discover import initialize_discovery_result

    discovery: dict[str, Any] = initialize_discovery_result("medpubsub", __version__, "medpubsub")
    discovery["activities"].extend(load_exported_activities())
    if discover_system:
        discovery["system"] = _local_system()
    return discovery


def load_exported_activities() -> list[dict[str, Any]]:
    """Every action and probe in `__all__` of our modules, with arguments and docstrings."""
    from chaoslib.discovery.discover import discover_actions, discover_probes

    activities: list[dict[str, Any]] = []
    for module in ACTION_MODULES:
        activities.extend(discover_actions(module))
    for module in PROBE_MODULES:
        activities.extend(discover_probes(module))
    return activities


def _local_system() -> dict[str, Any] | None:
    from pytest_medpubsub import state

    try:
        return {"local": state.read().model_dump(mode="json")}
    except state.NoLocalSystem:
        return None
