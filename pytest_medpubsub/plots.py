"""PNG plots of a run: order latency over time and its distribution; patients, makers and lag.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
state), so plotting works in CI, in threads and while pytest captures output. Every plot accepts an
empty summary and says "no data" instead of failing: a report is most needed when a run went wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pytest_medpubsub.observer import NS_PER_S, Summary, percentile
from pytest_medpubsub.reports.faults import Fault
from pytest_medpubsub.slo import load_end_ns, load_step_ns

PHYSICAL_FLOOR_S = 2.0
ROLLING_WINDOW_S = 10.0

LATENCY_PNG = "latency.png"
DISTRIBUTION_PNG = "latency-distribution.png"
SCALING_PNG = "scaling.png"

_BLUE = "#3b6ea5"
_ORANGE = "#e07b39"
_GREEN = "#3a9a5b"
_RED = "#c0392b"
_PURPLE = "#7b5ea7"
_GREY = "#6b6b6b"
_SIZE = (10.0, 4.8)
_DPI = 120


def write_plots(
    directory: Path,
    summary: Summary,
    slo_p95_s: float | None = None,
    faults: Sequence[Fault] = (),
) -> list[Path]:
    """Draw the three plots into `directory`, the `faults` marked on both timelines; return
    their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        plot_latency(summary, directory / LATENCY_PNG, slo_p95_s, faults),
        plot_latency_distribution(summary, directory / DISTRIBUTION_PNG, slo_p95_s),
        plot_scaling(summary, directory / SCALING_PNG, faults),
    ]


def plot_latency(
    summary: Summary, path: Path, slo_p95_s: float | None = None, faults: Sequence[Fault] = ()
) -> Path:
    """Each order's latency at the time it was placed, a rolling p95, the 2 s floor, the SLO,
    and the faults (a killed maker's orders wait for its transaction to time out)."""
    figure, axes = _figure()
    origin = _origin_ns(summary)
    complete = [row for row in summary.per_order if row.latency_s is not None]
    times = [(row.ordered_at_ns - origin) / NS_PER_S for row in complete]
    latencies = [row.latency_s for row in complete if row.latency_s is not None]
    if complete:
        axes.scatter(
            times, latencies, s=14, color=_BLUE, alpha=0.55, linewidths=0, label="order", zorder=3
        )
        axes.plot(
            times,
            rolling_percentile(times, latencies, 95, ROLLING_WINDOW_S),
            color=_ORANGE,
            linewidth=2,
            marker=_marker_if_sparse(times),
            label=f"rolling p95 ({ROLLING_WINDOW_S:g} s window)",
        )
    top = max([*latencies, PHYSICAL_FLOOR_S, slo_p95_s or 0.0]) * 1.15
    incomplete = [row for row in summary.per_order if row.latency_s is None]
    if incomplete:
        axes.scatter(
            [(row.ordered_at_ns - origin) / NS_PER_S for row in incomplete],
            [top * 0.97] * len(incomplete),
            marker="x",
            color=_RED,
            s=30,
            label=f"incomplete ({len(incomplete)})",
        )
    _reference_lines(axes, slo_p95_s, horizontal=True)
    _fault_markers(axes, faults, origin, labelled=True)
    axes.set_ylim(0, top)
    _readable_limits(axes)
    axes.set_xlabel("order placed at (s since start)")
    axes.set_ylabel("end-to-end latency (s)")
    axes.set_title(f"Order latency — {_latency_caption(summary)}", loc="left")
    if not summary.per_order:
        _no_data(axes, "no orders observed")
    _legend(axes)
    return _save(figure, path)


def plot_latency_distribution(summary: Summary, path: Path, slo_p95_s: float | None = None) -> Path:
    """A histogram of order latencies with p50, p95 and p99 marked."""
    figure, axes = _figure()
    latencies = [row.latency_s for row in summary.per_order if row.latency_s is not None]
    if latencies:
        axes.hist(
            latencies,
            bins=_bins(latencies),
            color=_BLUE,
            alpha=0.75,
            edgecolor="white",
            label="orders",
        )
    stats = summary.latency_s
    if stats is not None:
        for name, value, color in (
            ("p50", stats.p50, _GREEN),
            ("p95", stats.p95, _ORANGE),
            ("p99", stats.p99, _PURPLE),
        ):
            axes.axvline(value, color=color, linewidth=2, label=f"{name} {value:.2f} s")
    _reference_lines(axes, slo_p95_s, horizontal=False)
    axes.set_xlim(left=0)
    axes.set_xlabel("end-to-end latency (s)")
    axes.set_ylabel("orders")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Latency distribution — {_latency_caption(summary)}", loc="left")
    if not latencies:
        _no_data(axes, "no completed orders")
    _legend(axes)
    return _save(figure, path)


def plot_scaling(summary: Summary, path: Path, faults: Sequence[Fault] = ()) -> Path:
    """Patients and makers, order lag, and throughput over time, with the load step and end and
    the faults injected."""
    figure = Figure(figsize=(_SIZE[0], 7.2), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    counts, lag, rates = figure.subplots(3, 1, sharex=True, height_ratios=(3, 2, 2))
    timeline = summary.timeline
    origin = _origin_ns(summary)
    times = [(s.t_ns - origin) / NS_PER_S for s in timeline]
    marker = _marker_if_sparse(times)

    for values, color, label in (
        ([s.patients for s in timeline], _GREEN, "patients"),
        ([s.jobs for s in timeline], _BLUE, "makers (unfinished jobs)"),
    ):
        counts.step(
            times,
            _values(values),
            where="post",
            color=color,
            linewidth=2,
            label=label,
            marker=marker,
        )
    counts.set_ylabel("count")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    peak = "makers not sampled" if summary.max_jobs is None else f"peak {summary.max_jobs} makers"
    counts.set_title(f"Scaling — {summary.orders} orders, {peak}", loc="left")

    lag.plot(
        times,
        _values([s.lag for s in timeline]),
        color=_ORANGE,
        linewidth=2,
        label="lag (orders not yet taken)",
        marker=marker,
    )
    lag.set_ylabel("order lag")
    lag.yaxis.set_major_locator(MaxNLocator(integer=True))

    for rate, color, label in (
        ([s.tabs_per_s for s in timeline], _PURPLE, "tabs/s delivered"),
        ([s.orders_per_s for s in timeline], _GREY, "orders/s placed"),
    ):
        rates.plot(times, rate, color=color, linewidth=1.5, label=label, marker=marker)
    rates.set_ylabel("per second")
    rates.set_xlabel("time (s since start)")

    sampled = {
        counts: any(s.patients is not None or s.jobs is not None for s in timeline),
        lag: any(s.lag is not None for s in timeline),
        rates: bool(timeline),
    }
    for axes, has_data in sampled.items():
        _load_markers(axes, summary, origin, labelled=axes is counts)
        _fault_markers(axes, faults, origin, labelled=axes is counts)
        _readable_limits(axes)
        if not timeline:
            _no_data(axes, "no timeline samples")
        elif not has_data:
            _no_data(axes, "not sampled (no platform sampler)")
        _legend(axes)
    return _save(figure, path)


def rolling_percentile(
    times: Sequence[float], values: Sequence[float], p: float, window_s: float
) -> list[float]:
    """For each point, the nearest-rank p-th percentile of the values in the trailing window.

    `times` must be ascending; the window is (t - window_s, t], so the line shows what the
    latency SLO looked like to someone watching at that moment.
    """
    result: list[float] = []
    start = 0
    for index, now in enumerate(times):
        while times[start] <= now - window_s:
            start += 1
        value = percentile(values[start : index + 1], p)
        result.append(math.nan if value is None else value)
    return result


# ------------------------------------------------------------------ helpers


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> Path:
    for axes in figure.axes:
        axes.grid(True, alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
    figure.savefig(path, format="png", facecolor="white")
    return path


def _origin_ns(summary: Summary) -> int:
    """Time zero of every plot: the mark, else the first thing observed."""
    if summary.since_ns is not None:
        return summary.since_ns
    firsts = [row.ordered_at_ns for row in summary.per_order[:1]]
    firsts += [sample.t_ns for sample in summary.timeline[:1]]
    return min(firsts, default=summary.observed_at_ns)


def _latency_caption(summary: Summary) -> str:
    stats = summary.latency_s
    done = f"{summary.complete_orders}/{summary.orders} orders complete"
    if stats is None:
        return done
    return f"{done}, p50 {stats.p50:.2f} s · p95 {stats.p95:.2f} s · p99 {stats.p99:.2f} s"


def _reference_lines(axes: Axes, slo_p95_s: float | None, horizontal: bool) -> None:
    line = axes.axhline if horizontal else axes.axvline
    line(
        PHYSICAL_FLOOR_S,
        color=_GREY,
        linestyle=":",
        linewidth=1.5,
        label=f"physical floor {PHYSICAL_FLOOR_S:g} s",
    )
    if slo_p95_s is not None:
        line(
            slo_p95_s, color=_RED, linestyle="--", linewidth=1.5, label=f"SLO p95 ≤ {slo_p95_s:g} s"
        )


def _load_markers(axes: Axes, summary: Summary, origin: int, labelled: bool) -> None:
    """Vertical lines where the scale-out and scale-in SLOs start counting."""
    step, end = load_step_ns(summary.timeline), load_end_ns(summary.timeline)
    for at, style, label in ((step, "--", "load step"), (end, "-.", "load end")):
        if at is not None:
            axes.axvline(
                (at - origin) / NS_PER_S,
                color=_GREY,
                linestyle=style,
                linewidth=1,
                label=label if labelled else "_load marker",
            )


def _fault_markers(axes: Axes, faults: Sequence[Fault], origin: int, labelled: bool) -> None:
    """A vertical line per fault: kills solid red, other chaos actions dotted purple; each kind
    in the legend once, with how many there were."""
    kills = [fault for fault in faults if fault.is_kill]
    actions = [fault for fault in faults if not fault.is_kill]
    for group, color, style in ((kills, _RED, "-"), (actions, _PURPLE, ":")):
        kinds: dict[str, int] = {}
        for fault in group:
            kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        seen: set[str] = set()
        for fault in group:
            first = fault.kind not in seen
            seen.add(fault.kind)
            label = f"{fault.kind.replace('_', ' ')} ({kinds[fault.kind]})"
            axes.axvline(
                (fault.at_ns - origin) / NS_PER_S,
                color=color,
                linestyle=style,
                linewidth=1.2,
                alpha=0.8,
                label=label if labelled and first else "_fault",
            )


def _readable_limits(axes: Axes, min_span_s: float = 10.0, min_top: float = 1.0) -> None:
    """At least 10 s wide and 0..1 tall: with one point or none, matplotlib would zoom to ±0.05."""
    left, right = axes.get_xlim()
    if right - left < min_span_s:
        start = min((left + right) / 2, 0.0) - 0.5  # time 0 (the start) stays in view
        axes.set_xlim(start, max(right, start + min_span_s))
    top = axes.get_ylim()[1]
    axes.set_ylim(0, max(top, min_top))


def _marker_if_sparse(times: Sequence[float]) -> str | None:
    """Lines through one or two points are invisible; mark the points instead."""
    return "o" if len(times) < 3 else None


def _values(values: Sequence[int | None]) -> list[float]:
    return [math.nan if value is None else float(value) for value in values]


def _bins(values: Sequence[float]) -> int:
    """The Rice rule (2·∛n), kept between 5 and 50, so both 3 and 3000 orders read well."""
    return max(5, min(50, math.ceil(2 * math.cbrt(len(values)))))


def _no_data(axes: Axes, text: str) -> None:
    axes.text(
        0.5,
        0.5,
        text,
        transform=axes.transAxes,
        ha="center",
        va="center",
        color=_GREY,
        fontsize=12,
        style="italic",
    )


def _legend(axes: Axes) -> None:
    if axes.get_legend_handles_labels()[0]:
        # Outside the axes, on the right: the data (often near t = 0) stays unhidden.
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
