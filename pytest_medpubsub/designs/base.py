"""What a design is: who starts the medicine makers, and everything that differs because of it.

A design is one module of this package with one object satisfying `Design`; the harness asks
that object rather than comparing design names, so that a third design is a new module here and
an entry in `designs.DESIGNS`, not a hunt through the platforms, the plugin and the bench.

A third design brings, besides its module here: its local platform (a `LocalSystem` in
`platforms/`), how a cluster runs it (a `ClusterDesign` in `platforms/cluster_designs.py`) and
its overlays, and any Chaos Toolkit actions of its own; its module points to each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # what the designs build is imported when built (the cluster stack is optional)
    from pytest_medpubsub.bench.rows import BenchRow
    from pytest_medpubsub.k8s.objects import Manifest
    from pytest_medpubsub.platforms.cluster_designs import ClusterDesign
    from pytest_medpubsub.platforms.local_system import LocalRun, LocalSystem


class Design(Protocol):
    """One way of starting the makers, as the harness needs to know it."""

    @property
    def name(self) -> str:
        """As `--medpubsub-design` / `medpubsub up --design` take it, and reports show it."""

    @property
    def summary(self) -> str:
        """One line for help texts and the bench's table."""

    @property
    def latency_allowance_s(self) -> float:
        """What the design adds to every latency bound by nature (the plugin's defaults and the
        scenarios' markers alike); 0 for the design the bounds were set for."""

    @property
    def needs_keda(self) -> bool:
        """Whether KEDA starts its makers on a cluster (else KEDA is not installed)."""

    @property
    def chaos_actions(self) -> tuple[str, ...]:
        """The Chaos Toolkit action modules of this design's own parts (beyond the actions every
        design shares), which the extension exports and its experiments call."""

    @property
    def left_out(self) -> Mapping[str, str]:
        """Tests (node ids from the project's root) skipped under this design, each with the
        measured cause; the bounds are not loosened instead. `--medpubsub-run-left-out` runs
        them anyway."""

    @property
    def bench_rows(self) -> tuple[BenchRow, ...]:
        """The design's rows in the benchmark's table (it, and any variants of it)."""

    def local_platform(self, run: LocalRun, manifest: Path | None = None) -> LocalSystem:
        """The design on this machine, not started yet; `manifest` replaces the project's
        ScaledJob manifest (the bench's variants), for a design that has one."""

    def cluster_overlay(self, platform_overlay: str) -> str:
        """The render (build/manifests/<name>.yaml) applied where the ScaledJob design applies
        `platform_overlay`; PlatformError when the design has none for it."""

    def on_cluster(self, objects: list[Manifest]) -> ClusterDesign:
        """How the cluster platform watches, counts, kills and pauses this design's makers,
        read from its render (`objects`)."""
