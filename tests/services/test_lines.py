"""The commit order of a partition's orders in flight (pure logic, no broker)."""

from __future__ import annotations

import threading

import pytest

from medpubsub.medicine.lines import PartitionLines

P0 = ("tabs.orders", 0)
P1 = ("tabs.orders", 1)


def test_an_order_commits_after_the_one_before_it_on_its_partition_only() -> None:
    lines = PartitionLines()
    first, second, other = lines.enter(P0, 5, 3), lines.enter(P0, 6, 3), lines.enter(P1, 9, 3)

    assert first.earlier_committed(0.0)  # nothing before it
    assert other.earlier_committed(0.0)  # another partition's order never waits for P0
    assert not second.earlier_committed(0.01)  # the first has not settled yet
    first.settle(committed=True)
    assert second.earlier_committed(0.0)


def test_an_order_behind_a_failed_one_must_not_commit_and_the_partition_is_read_again() -> None:
    lines = PartitionLines()
    failed, behind = lines.enter(P0, 5, 3), lines.enter(P0, 6, 3)
    failed.settle(committed=False)
    lines.leave(failed)

    assert not behind.earlier_committed(0.0)
    assert lines.rereading(P0)
    assert lines.ready_to_reread() == []  # the order behind it is still open
    behind.settle(committed=False)
    lines.leave(behind)
    assert lines.ready_to_reread() == [(P0, 5)]  # from the first that was not committed
    assert not lines.rereading(P0)


def test_waiting_for_an_earlier_order_ends_when_it_settles() -> None:
    lines = PartitionLines()
    first, second = lines.enter(P0, 1, 1), lines.enter(P0, 2, 1)
    timer = threading.Timer(0.05, lambda: first.settle(committed=True))
    timer.start()

    assert second.earlier_committed(5.0)
    timer.join()


def test_a_revoked_partition_is_not_read_again_here() -> None:
    lines = PartitionLines()
    entry = lines.enter(P0, 3, 1)
    entry.settle(committed=False)
    lines.leave(entry)
    lines.forget({P0})

    assert not lines.rereading(P0)
    assert lines.ready_to_reread() == []


def test_unsettled_orders_are_listed_per_partition() -> None:
    lines = PartitionLines()
    a, b, c = lines.enter(P0, 1, 1), lines.enter(P0, 2, 1), lines.enter(P1, 1, 1)

    assert lines.unsettled({P0}) == [a, b]
    assert set(lines.unsettled()) == {a, b, c}
    a.settle(committed=True)
    lines.leave(a)
    assert lines.unsettled({P0}) == [b]


def test_records_polled_after_a_rewind_are_stale_until_the_rewound_one_comes() -> None:
    lines = PartitionLines()
    failed = lines.enter(P0, 2, 1)
    failed.settle(committed=False)
    lines.leave(failed)
    assert lines.ready_to_reread() == [(P0, 2)]  # the maker seeks P0 back to 2

    # (partition, offset polled, stale?) in the order they are polled after the seek
    polled = [
        (P0, 3, True),  # fetched before the seek: started, it would commit past offset 2
        (P1, 7, False),  # another partition is not concerned
        (P0, 4, True),
        (P0, 2, False),  # the rewound record: from here on the partition reads in order
        (P0, 3, False),
    ]
    assert [(key, offset, lines.stale(key, offset)) for key, offset, _ in polled] == polled


def test_a_rewind_of_a_partition_that_goes_to_another_maker_is_forgotten() -> None:
    lines = PartitionLines()
    lines.rewind(P0, 5)
    lines.forget({P0})
    assert not lines.stale(P0, 9)


@pytest.mark.parametrize(
    ("calls", "answers", "handed_over"),
    [
        pytest.param(["commit", "hand over"], [True, False], False, id="commit-first"),
        pytest.param(["hand over", "commit"], [True, False], True, id="hand-over-first"),
        pytest.param(["commit", "commit"], [True, True], False, id="commit-asked-again"),
        pytest.param(["hand over", "hand over"], [True, True], True, id="handed-over-twice"),
    ],
)
def test_an_order_is_either_committed_or_handed_over_whichever_asks_first(
    calls: list[str], answers: list[bool], handed_over: bool
) -> None:
    entry = PartitionLines().enter(P0, 5, 3)
    asked = {"commit": entry.claim_commit, "hand over": entry.hand_over}
    assert [asked[call]() for call in calls] == answers
    assert entry.handed_over is handed_over


def test_an_order_handed_over_holds_nothing_back_when_its_partition_returns() -> None:
    lines = PartitionLines()
    handed = lines.enter(P0, 5, 3)
    assert handed.hand_over()
    lines.forget({P0})  # the revocation returns before the order thread has stopped
    back = lines.enter(P0, 5, 3)  # the partition comes back to this maker
    handed.settle(committed=False)
    lines.leave(handed)

    assert back.earlier_committed(0.0)  # it does not wait behind the order handed over
    assert not lines.rereading(P0)
    assert lines.unsettled({P0}) == [back]


def test_a_departing_order_that_was_not_committed_leaves_its_partition_to_the_next_owner() -> None:
    lines = PartitionLines()
    departing = lines.enter(P0, 5, 3)
    departing.departing = True  # revoked while it was made
    lines.forget({P0})
    departing.settle(committed=False)  # the next owner's registration fenced its commit
    lines.leave(departing)

    assert not lines.rereading(P0)
    assert lines.ready_to_reread() == []


def test_what_the_previous_holder_committed_is_given_up_here_and_the_rest_goes_on() -> None:
    lines = PartitionLines()
    made_there, also_there, ours = (
        lines.enter(P0, 5, 3),
        lines.enter(P0, 6, 3),
        lines.enter(P0, 7, 3),
    )

    given_up = lines.previous_holder_committed(P0, 7)  # it committed 5 and 6, up to 7

    assert given_up == [made_there, also_there]
    assert [entry.handed_over for entry in (made_there, also_there, ours)] == [True, True, False]
    assert not made_there.claim_commit()  # never committed here
    for entry in given_up:
        entry.settle(committed=False)
        lines.leave(entry)
    assert ours.earlier_committed(0.0)  # 6 is made, over there: 7 does not wait behind it
    assert not lines.rereading(P0)
    assert lines.stale(P0, 6)  # polled again later: already made
    assert not lines.stale(P0, 7)
    assert not lines.stale(P1, 6)  # other partitions are not concerned


def test_an_order_behind_one_given_up_for_another_reason_still_waits_for_it() -> None:
    lines = PartitionLines()
    handed, behind = lines.enter(P0, 5, 3), lines.enter(P0, 6, 3)
    assert handed.hand_over()  # handed over unmade, not made elsewhere
    handed.settle(committed=False)

    assert not behind.earlier_committed(0.0)


def test_a_partition_sought_back_below_what_the_previous_holder_committed_is_read_on() -> None:
    lines = PartitionLines()
    lines.rewind(P0, 6)  # a paused partition's records are read again from 6
    lines.previous_holder_committed(P0, 8)  # then the check finds 6 and 7 made elsewhere

    assert lines.stale(P0, 9)  # fetched before the seek
    assert lines.stale(P0, 6)  # the record sought back to: made elsewhere, but the seek is done
    assert lines.stale(P0, 7)
    assert not lines.stale(P0, 8)
