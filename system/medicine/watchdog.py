"""A bound on blocking Kafka calls that librdkafka may never return from.

librdkafka does not enforce the timeout of its coordinator requests (confluentinc/librdkafka#5456,
still open in 2.16): when the group coordinator goes away mid-transaction, as when the broker
restarts, `send_offsets_to_transaction` can block forever, whatever timeout it was given. A maker
stuck there keeps its partitions (its heartbeats go on from librdkafka's own threads) until
`max.poll.interval.ms`, 5 minutes, and every order on them waits that long.

Such a call cannot be interrupted from Python, so the watchdog ends the process instead: exit
status 1, as for any Kafka failure the maker cannot recover from. Nothing is lost: the open
transaction is aborted by the broker after `transaction.timeout.ms`, the record's offset was never
committed, and the maker's last words leave the consumer group so that its partitions go to
another maker at once rather than when its session expires.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("medpubsub.medicine")

# The exit status of a maker that failed in a way it cannot recover from (see service.py).
EXIT_FAILED = 1
# How long the last words (leaving the consumer group) may take before the process ends anyway.
LAST_WORDS_TIMEOUT_S = 3.0


def exit_at_once(message: str, last_words: Callable[[], None] | None = None) -> None:
    """Log why, say the last words (bounded: they may block too) and end the process now.

    `os._exit`, because the stuck thread is inside a C call: a normal exit would wait for it.
    """
    log.error(message)
    if last_words is not None:
        speaker = threading.Thread(target=_quietly, args=(last_words,), name="last-words")
        speaker.daemon = True
        speaker.start()
        speaker.join(LAST_WORDS_TIMEOUT_S)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_FAILED)


def _quietly(last_words: Callable[[], None]) -> None:
    try:
        last_words()
    except Exception as error:  # the process ends either way; say why the words failed
        log.warning("last words failed: %s", error)


class Watchdog:
    """Calls `on_expiry` when a guarded block is still running after its bound."""

    def __init__(self, name: str, on_expiry: Callable[[str], None] = exit_at_once) -> None:
        self.name = name
        self.on_expiry = on_expiry

    @contextmanager
    def guard(self, what: str, seconds: float) -> Iterator[None]:
        """Bound the block to `seconds`; `what` names it in the message when it overruns."""
        message = (
            f"{self.name}: {what} still blocked after {seconds:.0f} s (a librdkafka coordinator"
            " request can outlive its timeout, confluentinc/librdkafka#5456); exiting so that"
            " another maker takes the order"
        )
        timer = threading.Timer(seconds, self.on_expiry, args=(message,))
        timer.name = f"watchdog: {what}"
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
