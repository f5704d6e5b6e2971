"""Whether an idle maker stays, as one of the warm makers, or leaves (scale-in).

KEDA keeps `minReplicaCount` Jobs running and starts a new one at its next poll whenever one ends.
So a warm maker that left at its idle timeout was replaced within a second, and a group at rest
churned: every idle timeout, both warm makers left one after the other, each departure moved
their partitions to the other maker (which registers them: seconds on a small CPU share with
SCRAM) and each replacement's join moved them back. Load that began during a churn paid for it:
measured in the Strimzi stage of `make e2e-here` (2026-12-07), a warm maker left 2 s into the
steady state, its replacement joined 5 s later, and the orders handed over at that join took
3.4-3.9 s instead of 2.1 s.

So an idle maker leaves only when the group has more members than MEDICINE_WARM_MAKERS (the
ScaledJob's minReplicaCount, rule [wiring.warm]) and it is not one of the first that many members
by member id. Every maker ranks the same members the same way, so when several go idle together
exactly the surplus leaves, whichever view of the group each one had: a maker among the first
`warm` of a view is among the first `warm` of any smaller one. A warm maker stays at rest for
MEDICINE_WARM_SECONDS at most and then leaves like any other, so that KEDA replaces it by a
fresh one before the Job's activeDeadlineSeconds would kill it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

log = logging.getLogger("medpubsub.medicine")

# One look at the group's members.
DESCRIBE_TIMEOUT_S = 5.0


def among_warm(own_id: str, member_ids: Iterable[str], warm_makers: int) -> bool:
    """True when `own_id` is one of the first `warm_makers` of the members, ranked by id.

    A maker counts itself even when the description missed it (it just joined).
    """
    ranked = sorted({*member_ids, own_id})
    return ranked.index(own_id) < warm_makers


class WarmFloor:
    """Asks the group, at each idle timeout, whether this maker is one of its warm makers."""

    def __init__(
        self,
        group_id: str,
        warm_makers: int,
        warm_seconds: float,
        admin: Callable[[], AdminClient],
    ) -> None:
        self._group_id = group_id
        self._warm_makers = warm_makers
        self._warm_seconds = warm_seconds
        self._make_admin = admin
        self._admin: AdminClient | None = None

    def stays(self, own_id: str, age_s: float) -> bool:
        """Whether a maker idle for its whole timeout stays; False means it leaves.

        A group that cannot be described is left, as every maker did before warm makers stayed:
        KEDA starts the floor again anyway.
        """
        if self._warm_makers <= 0 or age_s >= self._warm_seconds or not own_id:
            return False
        if self._admin is None:
            self._admin = self._make_admin()
        try:
            future = self._admin.describe_consumer_groups(
                [self._group_id], request_timeout=DESCRIBE_TIMEOUT_S
            )[self._group_id]
            description = future.result(timeout=DESCRIBE_TIMEOUT_S)
            members = [member.member_id for member in description.members]
        except (KafkaException, TimeoutError) as error:
            log.warning("could not list the group's members, so leaving as idle: %s", error)
            return False
        return among_warm(own_id, members, self._warm_makers)
