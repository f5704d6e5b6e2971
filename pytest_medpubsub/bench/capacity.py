"""What a load needs of makers, and which bound a run reached (the bench's rows, the demo's end).

A patient places one order a second and an order takes the 2 s floor, so p patients keep 2p
orders in flight: 2p x 15.5 tabs on average. A maker holds `MEDICINE_MAX_WORKERS` tabs at once,
or `MEDICINE_MAX_ORDERS_IN_FLIGHT` orders when that is set; a dispatcher's maker holds one
order. So the load needs ceil(orders in flight / what one maker holds) makers, and the design may
run its warm floor on top (issue 17: peak makers at most the need plus the floor).

Past its capacity a run is held back by one of three bounds, and the table names which:
- the machine's CPU, measured over the run (busy at least `CPU_BOUND`);
- the makers' bound (the most Jobs the ScaledJob runs, `ScalingSpec.most_jobs`; the
  dispatcher's DISPATCHER_MAX_MAKERS);
- the partitions of the orders topic (a maker beyond them owns no partition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medpubsub.settings import MIN_TAB_SECONDS, MedicineSettings
from pytest_medpubsub import project
from pytest_medpubsub.k8s.scaledjob_wiring import MEAN_TABS, setting_as_read
from pytest_medpubsub.kafka.topics import DEFAULT_TOPICS, read_topic_specs
from pytest_medpubsub.keda.scaledjob import ScaledJobSpec

FLOOR_S = MIN_TAB_SECONDS  # an order's tabs are made together, each in at least this
ORDERS_PER_PATIENT_PER_S = 1.0
# A machine this busy over a run is the bound: more makers would only share the same cores.
CPU_BOUND = 0.9


@dataclass(frozen=True)
class MakerNeed:
    """The makers a load needs (their workers hold its orders in flight) and the warm floor."""

    needed: int
    floor: int

    @property
    def allowed(self) -> int:
        """The most makers the load justifies: the need, plus the floor kept warm at rest."""
        return self.needed + self.floor


def orders_in_flight(patients: int) -> float:
    return patients * ORDERS_PER_PATIENT_PER_S * FLOOR_S


def mean_orders_per_maker(spec: ScaledJobSpec) -> float:
    """The orders of mean size one of `spec`'s makers holds at once (its settings as read; no
    headroom, unlike the wiring rule's `orders_per_maker`, which sizes KEDA's threshold)."""
    env = spec.literal_env
    by_workers = int(setting_as_read(env, MedicineSettings, "max_workers")) / MEAN_TABS
    limit = int(setting_as_read(env, MedicineSettings, "max_orders_in_flight"))
    return min(by_workers, limit) if limit else by_workers


@dataclass(frozen=True)
class RowCapacity:
    """What a row's makers hold: orders each, the warm floor, and the most that run at once."""

    orders_per_maker: float
    floor: int
    max_makers: int
    # Group members are bound by the partitions (one beyond them owns none); a design whose
    # makers are not members (the dispatcher's) is not.
    partitions_bound: bool = True

    def need(self, patients: int) -> MakerNeed:
        return maker_need(patients, orders_per_maker=self.orders_per_maker, floor=self.floor)


def scaledjob_capacity(spec: ScaledJobSpec) -> RowCapacity:
    """A ScaledJob's makers: sized by their settings, minReplicaCount warm, and the most that
    KEDA runs (maxReplicaCount, less a custom strategy's deduction)."""
    return RowCapacity(
        mean_orders_per_maker(spec), spec.scaling.min_replica_count, spec.scaling.most_jobs
    )


def maker_need(patients: int, *, orders_per_maker: float, floor: int) -> MakerNeed:
    if orders_per_maker <= 0:
        raise ValueError(f"a maker must hold some orders, not {orders_per_maker}")
    needed = math.ceil(orders_in_flight(patients) / orders_per_maker - 1e-9)
    return MakerNeed(needed=needed, floor=floor)


def bounds_reached(
    *, busy: float | None, peak_makers: int | None, max_makers: int, partitions: int | None
) -> list[str]:
    """The bounds a run reached, as the table writes them; none when it stayed within all."""
    reached = []
    if busy is not None and busy >= CPU_BOUND:
        reached.append(f"CPU {busy * 100:.0f} %")
    if peak_makers is not None and peak_makers >= max_makers:
        reached.append(f"makers ({max_makers})")
    if peak_makers is not None and partitions is not None and peak_makers >= partitions:
        reached.append(f"partitions ({partitions})")
    return reached


@dataclass(frozen=True)
class CapacityReading:
    """A run at a steady load against what it needs: the makers, and the bounds it reached."""

    patients: int
    need: MakerNeed
    peak_makers: int | None
    bounds: tuple[str, ...]

    @property
    def bound(self) -> str:
        return ", ".join(self.bounds) or "none"

    def describe(self) -> str:
        """One line: "20 patients need 3 makers (+ 2 warm); peak 14; bound reached: CPU 97 %"."""
        peak = "unknown" if self.peak_makers is None else str(self.peak_makers)
        patients = f"{self.patients} patient{'' if self.patients == 1 else 's'}"
        makers = f"{self.need.needed} maker{'' if self.need.needed == 1 else 's'}"
        return (
            f"{patients} need {makers} (+ {self.need.floor} warm); peak {peak};"
            f" bound reached: {self.bound}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "patients": self.patients,
            "makers_needed": self.need.needed,
            "warm_floor": self.need.floor,
            "peak_makers": self.peak_makers,
            "bound": self.bound,
        }


def read_capacity(
    patients: int,
    capacity: RowCapacity,
    *,
    busy: float | None,
    peak_makers: int | None,
    orders_topic: str,
) -> CapacityReading:
    return CapacityReading(
        patients=patients,
        need=capacity.need(patients),
        peak_makers=peak_makers,
        bounds=tuple(
            bounds_reached(
                busy=busy,
                peak_makers=peak_makers,
                max_makers=capacity.max_makers,
                partitions=orders_partitions(orders_topic) if capacity.partitions_bound else None,
            )
        ),
    )


def orders_partitions(topic: str) -> int | None:
    """The orders topic's partitions, from the manifests every platform creates it from."""
    try:
        specs = read_topic_specs(project.project_dir() / project.TOPICS_MANIFEST)
    except (OSError, ValueError):
        specs = list(DEFAULT_TOPICS)
    return {spec.name: spec.partitions for spec in specs}.get(topic)
