"""Service level objectives: what a run must show, checked against the observer's summary.

Every check is reported, passed or not, with what was measured and what was required, so a failed
test says at once whether latency, losses or scaling broke — and by how much. A check that has
nothing to measure (no completed order, no platform samples) fails: a run that proves nothing
must not pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_medpubsub.observer import NS_PER_S, LatencyStats, Summary, TimelineSample

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Measured = float | int | str | None


class SloSpec(BaseModel):
    """The objectives of one run; None switches a check off.

    Scale-out: at least `min_jobs` makers within `scale_out_within_s` of the load step (the first
    sample where patients reached their maximum); `min_jobs` alone checks the peak only.
    Scale-in: back to the warm makers (the ScaledJob's `minReplicaCount`, given to `evaluate`)
    within `scale_in_within_s` of the load's end (the first sample where patients dropped to 0
    after being above it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    p95_s: Seconds | None = 3.0
    p99_s: Seconds | None = 4.0
    max_lost: Count = 0
    max_duplicates: Count = 0
    min_jobs: Annotated[int, Field(ge=1)] | None = None
    scale_out_within_s: Seconds | None = None
    scale_in_within_s: Seconds | None = None
    min_orders: Count = 1

    @model_validator(mode="after")
    def _scale_out_needs_a_count(self) -> SloSpec:
        if self.scale_out_within_s is not None and self.min_jobs is None:
            raise ValueError("scale_out_within_s needs min_jobs (how many makers to reach)")
        return self

    def allowing(self, extra_s: float) -> SloSpec:
        """The same objectives with `extra_s` more on each latency bound (a design's cost)."""
        if not extra_s:
            return self
        return self.model_copy(
            update={
                name: None if bound is None else bound + extra_s
                for name, bound in (("p95_s", self.p95_s), ("p99_s", self.p99_s))
            }
        )

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def from_marker(
        cls,
        args: Sequence[object],
        kwargs: Mapping[str, object],
        defaults: SloSpec | None = None,
    ) -> SloSpec:
        """`defaults` overridden by a `medpubsub_slo(...)` marker's keywords.

        Raises ValueError with one sentence for positional arguments, unknown keywords and
        values out of range, so the plugin can turn it into a usage error.
        """
        accepted = ", ".join(cls.keywords())
        if args:
            raise ValueError(
                f"medpubsub_slo takes keywords only (got {list(args)!r}); accepted: {accepted}"
            )
        unknown = sorted(set(kwargs) - set(cls.keywords()))
        if unknown:
            raise ValueError(
                f"medpubsub_slo does not know {', '.join(unknown)}; accepted keywords: {accepted}"
            )
        base = (defaults or cls()).model_dump()
        try:
            return cls.model_validate({**base, **kwargs})
        except ValidationError as error:
            raise ValueError(f"medpubsub_slo: {_one_line(error)}") from None


class SloCheck(BaseModel):
    """One objective: measured (a number, or text when there was nothing to measure) vs required."""

    model_config = ConfigDict(frozen=True)

    name: str
    measured: Measured
    required: str
    passed: bool
    unit: str = Field(default="", exclude=True)

    def measured_text(self) -> str:
        value = self.measured
        if isinstance(value, float):
            return f"{value:.2f}{self.unit}"
        if isinstance(value, int):
            return f"{value}{self.unit}"
        return "n/a" if value is None else value


class SloResult(BaseModel):
    """Every check of a run; `passed` only when all of them passed."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    checks: list[SloCheck]
    spec: SloSpec

    def failed_checks(self) -> list[SloCheck]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def failure_message(self) -> str:
        """A table of every check, measured vs required, ✓ or ✗, under a line naming the failed."""
        failed = self.failed_checks()
        verdict = (
            "SLOs met"
            if not failed
            else f"SLOs failed: {', '.join(check.name for check in failed)}"
        )
        header = ("", "check", "measured", "required")
        rows = [
            ("✓" if check.passed else "✗", check.name, check.measured_text(), check.required)
            for check in self.checks
        ]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(4)]
        lines = [verdict]
        for row in [header, *rows]:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return "\n".join(lines)


def evaluate(summary: Summary, spec: SloSpec, warm_makers: int = 0) -> SloResult:
    """Check `summary` against every objective `spec` switches on; scale-in ends at
    `warm_makers`, the makers the platform keeps running at rest."""
    checks = [_orders_check(summary, spec.min_orders)]
    if spec.p95_s is not None:
        checks.append(_latency_check("latency_p95", summary.latency_s, "p95", spec.p95_s))
    if spec.p99_s is not None:
        checks.append(_latency_check("latency_p99", summary.latency_s, "p99", spec.p99_s))
    checks.append(_at_most("lost_orders", summary.lost_orders, spec.max_lost))
    checks.append(_at_most("duplicate_tabs", summary.duplicate_tabs, spec.max_duplicates))
    if spec.min_jobs is not None:
        if spec.scale_out_within_s is None:
            checks.append(_peak_jobs_check(summary, spec.min_jobs))
        else:
            checks.append(
                _scale_out_check(summary.timeline, spec.min_jobs, spec.scale_out_within_s)
            )
    if spec.scale_in_within_s is not None:
        checks.append(_scale_in_check(summary.timeline, spec.scale_in_within_s, warm_makers))
    return SloResult(passed=all(check.passed for check in checks), checks=checks, spec=spec)


# ------------------------------------------------------------------ load step and load end


def load_step_ns(timeline: Sequence[TimelineSample]) -> int | None:
    """When the load reached its peak: the first sample with the most patients (None if none)."""
    patients = [s for s in timeline if s.patients is not None]
    peak = max((s.patients or 0 for s in patients), default=0)
    if peak == 0:
        return None
    return next(s.t_ns for s in patients if s.patients == peak)


def load_end_ns(timeline: Sequence[TimelineSample]) -> int | None:
    """When the load stopped: the first sample with 0 patients after one with more (None if not)."""
    loaded = False
    for sample in timeline:
        if sample.patients is None:
            continue
        if sample.patients > 0:
            loaded = True
        elif loaded:
            return sample.t_ns
    return None


# ------------------------------------------------------------------ the checks


def _orders_check(summary: Summary, minimum: int) -> SloCheck:
    return SloCheck(
        name="orders",
        measured=summary.orders,
        required=f"≥ {minimum}",
        passed=summary.orders >= minimum,
    )


def _latency_check(name: str, stats: LatencyStats | None, field: str, limit: float) -> SloCheck:
    required = f"≤ {limit:g} s"
    if stats is None:
        return SloCheck(name=name, measured="no completed order", required=required, passed=False)
    value = float(getattr(stats, field))
    return SloCheck(name=name, measured=value, required=required, passed=value <= limit, unit=" s")


def _at_most(name: str, measured: int, limit: int) -> SloCheck:
    return SloCheck(name=name, measured=measured, required=f"≤ {limit}", passed=measured <= limit)


def _peak_jobs_check(summary: Summary, minimum: int) -> SloCheck:
    required = f"≥ {minimum} makers at the peak"
    if summary.max_jobs is None:
        return SloCheck(
            name="peak_makers", measured="no job samples", required=required, passed=False
        )
    return SloCheck(
        name="peak_makers",
        measured=summary.max_jobs,
        required=required,
        passed=summary.max_jobs >= minimum,
    )


def _scale_out_check(timeline: Sequence[TimelineSample], minimum: int, within_s: float) -> SloCheck:
    """Seconds from the load step to the first sample with at least `minimum` makers."""
    required = f"≥ {minimum} makers within {within_s:g} s of the load step"
    step = load_step_ns(timeline)
    if step is None:
        return _unmeasured("scale_out", "no load step (patients never above 0)", required)
    after = [s for s in timeline if s.t_ns >= step and s.jobs is not None]
    reached = next((s for s in after if (s.jobs or 0) >= minimum), None)
    if reached is None:
        peak = max((s.jobs or 0 for s in after), default=0)
        return _unmeasured("scale_out", f"never reached (peak {peak} makers)", required)
    delay_s = (reached.t_ns - step) / NS_PER_S
    return SloCheck(
        name="scale_out", measured=delay_s, required=required, passed=delay_s <= within_s, unit=" s"
    )


def _scale_in_check(
    timeline: Sequence[TimelineSample], within_s: float, warm_makers: int = 0
) -> SloCheck:
    """Seconds from the load's end to the sample from which no more than the warm makers were
    left until the end."""
    required = f"{warm_makers} makers within {within_s:g} s of the load's end"
    end = load_end_ns(timeline)
    if end is None:
        return _unmeasured("scale_in", "the load never ended (patients never back to 0)", required)
    after = [s for s in timeline if s.t_ns >= end and s.jobs is not None]
    if not after:
        return _unmeasured("scale_in", "no job samples after the load's end", required)
    if (after[-1].jobs or 0) > warm_makers:
        seconds = (after[-1].t_ns - end) / NS_PER_S
        return _unmeasured(
            "scale_in", f"{after[-1].jobs} makers still running {seconds:.1f} s after", required
        )
    settled = len(after)
    while settled > 0 and (after[settled - 1].jobs or 0) <= warm_makers:
        settled -= 1
    delay_s = (after[settled].t_ns - end) / NS_PER_S
    return SloCheck(
        name="scale_in", measured=delay_s, required=required, passed=delay_s <= within_s, unit=" s"
    )


def _unmeasured(name: str, why: str, required: str) -> SloCheck:
    return SloCheck(name=name, measured=why, required=required, passed=False)


def _one_line(error: ValidationError) -> str:
    parts = []
    for detail in error.errors(include_url=False):
        where = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{where}={detail['input']!r} is invalid: {message}" if where else message)
    return "; ".join(parts)
