"""Scale-out and scale-in seconds of a run, measured whether or not an SLO asked for them.

A CI chart needs the same two figures from every run; the scale SLO checks only measure them when
a test sets `scale_out_within_s` / `scale_in_within_s`. When a check did measure, its figure is
the one reported (same number in the SLO table and the JUnit property); otherwise these
definitions apply, on the same load step and load end as the checks (pytest_medpubsub.slo).
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_medpubsub.observer import NS_PER_S, TimelineSample
from pytest_medpubsub.slo import load_end_ns, load_step_ns


def scale_out_s(timeline: Sequence[TimelineSample]) -> float | None:
    """Seconds from the load step to the first sample with the most makers seen after it; None
    without a load step or a job sample after it."""
    step = load_step_ns(timeline)
    if step is None:
        return None
    after = [s for s in timeline if s.t_ns >= step and s.jobs is not None]
    if not after:
        return None
    peak = max(s.jobs or 0 for s in after)
    reached = next(s for s in after if (s.jobs or 0) >= peak)
    return round((reached.t_ns - step) / NS_PER_S, 3)


def scale_in_s(timeline: Sequence[TimelineSample], warm_makers: int = 0) -> float | None:
    """Seconds from the load's end to the sample from which no more than the warm makers ran
    until the end; None when the load never ended or makers were still above the floor."""
    end = load_end_ns(timeline)
    if end is None:
        return None
    after = [s for s in timeline if s.t_ns >= end and s.jobs is not None]
    if not after or (after[-1].jobs or 0) > warm_makers:
        return None
    settled = len(after)
    while settled > 0 and (after[settled - 1].jobs or 0) <= warm_makers:
        settled -= 1
    return round((after[settled].t_ns - end) / NS_PER_S, 3)
