"""Warm makers stay at rest and only the surplus leaves (system/medicine/warm.py), on a real broker.

Two makers that keep one warm maker between them go idle together: exactly one leaves, and the
other stays through idle timeout after idle timeout instead of leaving to be replaced.
"""

from __future__ import annotations

from pytest_medpubsub.waiting import wait_until

from .kafka_io import STARTED, Service, ServiceFactory, TestTopics

IDLE_S = 2
# Idle timeouts the warm maker stays through, at least, while the test watches.
STAYS_THROUGH = 4
STAYING = "staying as a warm maker"


def test_of_two_idle_makers_keeping_one_warm_exactly_one_leaves(
    topics: TestTopics, service: ServiceFactory
) -> None:
    environment = topics.environment(MEDICINE_IDLE_TIMEOUT_SECONDS=IDLE_S, MEDICINE_WARM_MAKERS=1)
    makers = [service("medicine", environment) for _ in range(2)]
    for maker in makers:
        maker.wait_for_output(STARTED, timeout_s=30)

    def exited() -> list[Service]:
        return [maker for maker in makers if maker.process.poll() is not None]

    (gone,) = wait_until(exited, bool, 60, "one of the two idle makers leaving")
    (warm,) = [maker for maker in makers if maker is not gone]
    assert gone.wait_exit(timeout_s=1) == 0, gone.output()
    assert "idle for" in gone.output(), gone.output()
    assert STAYING not in gone.output(), gone.output()
    # The warm maker looks at the group at each idle timeout, and stays each time.
    repeated = f"({STAYING}[\\s\\S]*){{{STAYS_THROUGH}}}"
    warm.wait_for_output(repeated, timeout_s=(STAYS_THROUGH + 2) * IDLE_S + 30)
    assert warm.process.poll() is None, warm.output()
    assert exited() == [gone]
