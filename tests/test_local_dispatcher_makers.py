"""Which processes the local dispatcher platform takes for its makers when it kills one: a
`make-order` process, never the dispatcher itself (whose command line a freshly forked maker shows
until it has exec'd) nor anything else that got the pid."""

from __future__ import annotations

from pytest_medpubsub.platforms.local_dispatcher import _runs_a_maker
from tests.conftest import Spawn


def test_a_maker_is_recognised(spawned: Spawn) -> None:
    assert _runs_a_maker(spawned("-m", "medpubsub", "make-order").pid)


def test_the_dispatcher_is_never_taken_for_a_maker(spawned: Spawn) -> None:
    assert not _runs_a_maker(spawned("-m", "medpubsub", "dispatcher").pid, exec_timeout_s=0.3)


def test_another_program_is_not_a_maker(spawned: Spawn) -> None:
    assert not _runs_a_maker(spawned("something", "else").pid)


def test_a_process_that_is_gone_is_not_a_maker(spawned: Spawn) -> None:
    process = spawned("-m", "medpubsub", "make-order")
    process.kill()
    process.wait()
    assert not _runs_a_maker(process.pid)
