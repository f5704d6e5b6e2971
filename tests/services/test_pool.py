"""ThreadPoolController: one worker per task up to the cap, all at once, halted as one.

Concurrency is shown with barriers (a barrier of N parties only opens when N tasks run at the same
time), not with wall-clock timings.
"""

from __future__ import annotations

import threading

import pytest

from medpubsub.medicine.pool import Halted, ThreadPoolController


@pytest.mark.parametrize(
    ("max_workers", "tasks", "size"),
    [(30, 1, 1), (30, 7, 7), (30, 30, 30), (10, 30, 10), (1, 5, 1), (5, 0, 1)],
)
def test_the_pool_has_one_worker_per_task_up_to_the_cap(
    max_workers: int, tasks: int, size: int
) -> None:
    assert ThreadPoolController(max_workers).pool_size(tasks) == size


def test_a_cap_below_one_worker_is_refused() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolController(0)


def test_all_tasks_of_a_run_run_at_the_same_time() -> None:
    together = threading.Barrier(30, timeout=10)  # broken (and raising) unless 30 wait at once
    seen: list[int] = []

    def task(index: int, _: threading.Event) -> None:
        together.wait()
        seen.append(index)

    ThreadPoolController(30).run(30, task, stopping=lambda: False)

    assert sorted(seen) == list(range(30))


def test_a_capped_pool_runs_at_most_the_cap_at_once() -> None:
    wave = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    running = 0
    most = 0

    def task(_index: int, _halt: threading.Event) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        wave.wait()  # three at a time, in three waves
        with lock:
            running -= 1

    ThreadPoolController(3).run(9, task, stopping=lambda: False)

    assert most == 3


def test_a_failing_task_halts_the_others_and_its_error_is_raised() -> None:
    halted: list[bool] = []

    def task(index: int, halt: threading.Event) -> None:
        if index == 3:
            raise RuntimeError("tab 3 broke")
        halted.append(halt.wait(30))  # True only when halted
        raise Halted

    with pytest.raises(RuntimeError, match="tab 3 broke"):
        ThreadPoolController(5).run(5, task, stopping=lambda: False)

    assert halted == [True, True, True, True]


def test_a_stop_request_halts_every_task() -> None:
    started = threading.Barrier(4, timeout=10)  # the three tasks and the test
    stop = threading.Event()
    halted: list[bool] = []

    def task(_index: int, halt: threading.Event) -> None:
        started.wait()
        halted.append(halt.wait(30))
        raise Halted

    def stop_once_started() -> None:
        started.wait()
        stop.set()

    stopper = threading.Thread(target=stop_once_started)
    stopper.start()
    with pytest.raises(Halted):
        ThreadPoolController(3).run(3, task, stopping=stop.is_set)
    stopper.join()

    assert halted == [True, True, True]


def test_a_run_of_no_tasks_does_nothing() -> None:
    ThreadPoolController(3).run(0, lambda _index, _halt: None, stopping=lambda: False)
