"""Chaos Toolkit probes: is medpubsub delivering every order, once, in time?

Each probe watches the system as a client would, with the harness's `Observer` (read_committed,
from the beginning of the three topics): it starts one, lets it catch up, answers, and stops it.
Kafka is the local system's (from `state_file`, default `.medpubsub/local.json`), or `bootstrap`
when given (a cluster's external listener), so the same probes serve local and Kubernetes
experiments. They return booleans, for `"tolerance": true` in a steady-state hypothesis, and log
the figures behind the answer to Chaos Toolkit's log.
"""

# No `from __future__ import annotations`: Chaos Toolkit reads these signatures at runtime
# (`chaos validate`, discovery) and reports real types only for evaluated annotations.

import contextlib
import logging
import math
import time
from collections.abc import Iterator

from pytest_medpubsub.chaos.target import kafka_settings, local_state, logger
from pytest_medpubsub.observer import NS_PER_S, Mark, Observer, OrderRow, percentile
from pytest_medpubsub.waiting import WaitTimeout, wait_until

__all__ = [
    "makers_scaled_in",
    "no_duplicate_tabs",
    "no_lost_orders",
    "orders_delivered_within",
]

# Reading a busy session's topics from their beginning takes a few seconds at most.
CATCH_UP_TIMEOUT_S = 60.0
_SHOWN = 5


# Positional parameters on purpose: Chaos Toolkit passes arguments by name, but its discovery
# lists only positional-or-keyword parameters.
def orders_delivered_within(  # noqa: PLR0917
    latency_s: float = 5.0,
    window_s: float = 10.0,
    percentile_rank: float = 95.0,
    min_orders: int = 1,
    bootstrap: str | None = None,
    state_file: str | None = None,
) -> bool:
    """True when the orders placed during the next `window_s` seconds are delivered within
    `latency_s` (at the `percentile_rank` percentile), measured end to end.

    The window lies ahead, not behind: an order's latency ends when its last tab becomes visible
    to a read_committed reader, and only a reader that was watching at that moment knows when
    that was. So the probe watches for `window_s`, then waits at most `latency_s` more for the
    window's orders; an order still incomplete by then counts as infinitely late.
    `latency_s`: the bound, in seconds from the order's `ordered_at_ns` to its last tab.
    `window_s`: how long to collect orders, in seconds.
    `percentile_rank`: which percentile must be within the bound (95 = p95, 100 = every order).
    `min_orders`: fewer orders than this in the window is False: no load proves nothing.
    `bootstrap`: Kafka to watch instead of the local system's.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    with _watching(bootstrap, state_file) as observer:
        start = observer.mark()
        time.sleep(window_s)  # the measurement window itself, not a wait for a condition
        end_ns = time.time_ns()
        observer.wait_caught_up(CATCH_UP_TIMEOUT_S)
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: len(_incomplete(_placed(observer, start, end_ns))),
                lambda incomplete: incomplete == 0,
                latency_s,
                "the window's orders to be complete",
            )
        rows = _placed(observer, start, end_ns)
    latencies = [math.inf if row.latency_s is None else row.latency_s for row in rows]
    if len(rows) < min_orders:
        logger.warning(
            "only %d orders were placed in %g s (at least %d needed): is the system under load?",
            len(rows),
            window_s,
            min_orders,
        )
        return False
    measured = percentile(latencies, percentile_rank)
    assert measured is not None  # rows is not empty
    within = measured <= latency_s
    # Out of tolerance is a warning, so that it shows where only warnings do (pytest's log).
    logger.log(
        logging.INFO if within else logging.WARNING,
        "p%g of the %d orders placed in %g s: %s (bound %g s; %d incomplete)",
        percentile_rank,
        len(rows),
        window_s,
        "incomplete" if math.isinf(measured) else f"{measured:.2f} s",
        latency_s,
        len(_incomplete(rows)),
    )
    return within


def no_lost_orders(
    window_s: float = 600.0,
    settle_s: float = 60.0,
    bootstrap: str | None = None,
    state_file: str | None = None,
) -> bool:
    """True when every order placed in the last `window_s` seconds (up to this call) is
    complete, waiting up to `settle_s` for the ones still being made.

    Orders are in flight all the time under load, so "lost" means still incomplete after
    `settle_s`: long enough for a killed maker's order to be made again (its transaction times
    out after 10 s, then a new maker takes the order) or for a restarted broker to be caught up
    with. It doubles as a condition wait in a method: it returns as soon as the system has
    delivered everything that was ordered before the fault's end.
    `window_s`: how far back to look, in seconds.
    `settle_s`: how long incomplete orders may take to complete.
    `bootstrap`: Kafka to watch instead of the local system's.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    cutoff_ns = time.time_ns()
    since = Mark(cutoff_ns - int(window_s * NS_PER_S))
    with _watching(bootstrap, state_file) as observer:
        try:
            wait_until(
                lambda: _describe(_incomplete(_placed(observer, since, cutoff_ns))),
                lambda incomplete: incomplete == "none",
                settle_s,
                "every order placed before the probe to be complete",
                interval_s=0.5,
            )
        except WaitTimeout as timeout:
            logger.warning("orders lost: %s", timeout)
            return False
        orders = len(_placed(observer, since, cutoff_ns))
    logger.info("all %d orders placed in the last %g s are complete", orders, window_s)
    return True


def no_duplicate_tabs(
    window_s: float = 600.0,
    bootstrap: str | None = None,
    state_file: str | None = None,
) -> bool:
    """True when no tab of an order placed in the last `window_s` seconds was delivered twice
    (two committed tabs with the same `tab_id`: a maker's work committed twice).
    `window_s`: how far back to look, in seconds.
    `bootstrap`: Kafka to watch instead of the local system's.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    since = Mark(time.time_ns() - int(window_s * NS_PER_S))
    with _watching(bootstrap, state_file) as observer:
        summary = observer.summary(since=since)
    duplicated = [row.order_id for row in summary.per_order if row.duplicates]
    if duplicated:
        logger.warning(
            "%d duplicate tabs in %d orders, e.g. %s",
            summary.duplicate_tabs,
            len(duplicated),
            ", ".join(duplicated[:_SHOWN]),
        )
    else:
        logger.info("no duplicate tab among %d orders (%d tabs)", summary.orders, summary.tabs)
    return summary.duplicate_tabs == 0


def makers_scaled_in(timeout_s: float = 60.0, state_file: str | None = None) -> bool:
    """True when no more makers than the warm floor are left running within `timeout_s` seconds.

    Makers exit after `MEDICINE_IDLE_TIMEOUT_SECONDS` without an order, so once the load has
    stopped the ScaledJob must scale in to its `minReplicaCount` (the warm makers, which it
    replaces as they leave); a maker above that which stays is stuck.
    `timeout_s`: how long to wait for the surplus makers to exit.
    `state_file`: the local system's state file (default `.medpubsub/local.json`).
    """
    try:
        wait_until(
            lambda: local_state(state_file),
            lambda now: len(now.makers) <= now.warm_makers,
            timeout_s,
            "no more makers than the warm floor",
            interval_s=0.5,
        )
    except WaitTimeout as timeout:
        logger.warning("makers did not scale in: %s", timeout)
        return False
    return True


@contextlib.contextmanager
def _watching(bootstrap: str | None, state_file: str | None) -> Iterator[Observer]:
    """An observer that has read everything committed before this call; stopped afterwards."""
    observer = Observer(kafka_settings(bootstrap, state_file, identity="observer")).start()
    try:
        observer.wait_caught_up(CATCH_UP_TIMEOUT_S)
        yield observer
    finally:
        observer.stop()


def _placed(observer: Observer, since: Mark, until_ns: int) -> list[OrderRow]:
    return [row for row in observer.summary(since=since).per_order if row.ordered_at_ns <= until_ns]


def _incomplete(rows: list[OrderRow]) -> list[OrderRow]:
    return [row for row in rows if row.latency_s is None]


def _describe(rows: list[OrderRow]) -> str:
    """What a timeout reports as seen last: how many orders, how many tabs short, which."""
    if not rows:
        return "none"
    missing = sum(row.tabs_count - row.tabs_received for row in rows)
    now = time.time_ns()
    oldest_s = max((now - row.ordered_at_ns) / NS_PER_S for row in rows)
    shown = ", ".join(row.order_id for row in rows[:_SHOWN])
    return (
        f"{len(rows)} incomplete orders ({missing} tabs missing, oldest {oldest_s:.0f} s): {shown}"
    )
