"""A thread pool sized to each order: one worker per tab, so all tabs are made at the same time.

A tab is mostly waiting (a tab takes `MEDICINE_TAB_SECONDS` of wall time), so threads are the
right tool and the pool is created per order at the order's size: a 3-tab order costs 3 threads,
a 30-tab order 30 (or `max_workers`, when the job is capped, and then tabs beyond the cap wait for
a free worker). Nothing lingers between orders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

# How often the controller looks at the stop predicate while the tasks run; bounds how long a
# SIGTERM takes to reach the workers.
CHECK_INTERVAL_S = 0.05

Task = Callable[[int, threading.Event], None]


class Halted(Exception):
    """A task gave up because its run was halted (a stop request or another task's failure)."""


class ThreadPoolController:
    """Runs the tasks of one order at once, on a pool sized to the order.

    Each task gets its index and the run's `halt` event; a task that waits must wait on `halt`
    (e.g. `if halt.wait(seconds): raise Halted`) so that a stop request or a failing sibling ends
    the whole run within `CHECK_INTERVAL_S`.
    """

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers

    def pool_size(self, tasks: int) -> int:
        """One worker per task, capped at `max_workers`."""
        return max(1, min(tasks, self.max_workers))

    def run(self, tasks: int, task: Task, stopping: Callable[[], bool]) -> None:
        """Run `task(0..tasks-1)` concurrently and return when all succeeded.

        Raises the first real failure of a task (in index order), or `Halted` when `stopping()`
        became true before every task was done.
        """
        halt = threading.Event()
        with ThreadPoolExecutor(self.pool_size(tasks), thread_name_prefix="tab") as pool:
            futures = [pool.submit(task, index, halt) for index in range(tasks)]
            pending: set[Future[None]] = set(futures)
            while pending:
                done, pending = wait(pending, CHECK_INTERVAL_S, return_when=FIRST_EXCEPTION)
                if stopping() or any(future.exception() is not None for future in done):
                    halt.set()
        failures = [error for future in futures if (error := future.exception()) is not None]
        if failures:
            raise next((e for e in failures if not isinstance(e, Halted)), failures[0])
