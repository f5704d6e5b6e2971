"""By how much each SLO check passed or failed: the first thing a reader of a red run asks.

The bound comes from the report's `slo.spec` (what the run was held to, design allowance
included), not from parsing the check's `required` text. A check without a number (e.g.
"never reached (peak 2 makers)") has no margin: its measured text already says what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# check name -> (spec field, the direction a good value lies in, unit)
_BOUNDS: dict[str, tuple[str, str, str]] = {
    "orders": ("min_orders", "min", ""),
    "latency_p95": ("p95_s", "max", " s"),
    "latency_p99": ("p99_s", "max", " s"),
    "lost_orders": ("max_lost", "max", ""),
    "duplicate_tabs": ("max_duplicates", "max", ""),
    "peak_makers": ("min_jobs", "min", ""),
    "scale_out": ("scale_out_within_s", "max", " s"),
    "scale_in": ("scale_in_within_s", "max", " s"),
}
SECONDS_CHECKS = frozenset(name for name, (_, _, unit) in _BOUNDS.items() if unit)


def margin(check: Mapping[str, Any], spec: Mapping[str, Any] | None) -> str:
    """`"1.20 s over, +40 %"`, `"3 short"`, `"0.78 s to spare"`, `"at the bound"`, or `""`."""
    name = str(check.get("name", ""))
    measured = check.get("measured")
    known = _BOUNDS.get(name)
    if known is None or spec is None or isinstance(measured, bool):
        return ""
    field, direction, unit = known
    bound = spec.get(field)
    if not isinstance(measured, int | float) or not isinstance(bound, int | float):
        return ""
    # Positive when the value is on the good side of the bound.
    spare = bound - measured if direction == "max" else measured - bound
    if spare == 0:
        return "at the bound"
    amount = _number(abs(spare), unit)
    if spare > 0:
        return f"{amount} to spare"
    word = "over" if direction == "max" else "short"
    relative = (
        f", {'+' if direction == 'max' else '-'}{abs(spare) / bound * 100:.0f} %" if bound else ""
    )
    return f"{amount} {word}{relative}"


def measured_text(check: Mapping[str, Any]) -> str:
    """The measured value as the terminal table prints it (`SloCheck.measured_text`)."""
    value = check.get("measured")
    unit = " s" if check.get("name") in SECONDS_CHECKS else ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    if isinstance(value, int):
        return f"{value}{unit}"
    return "n/a" if value is None else str(value)


def _number(value: float, unit: str) -> str:
    if unit or not float(value).is_integer():
        return f"{value:.2f}{unit}"
    return f"{int(value)}"
