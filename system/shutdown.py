"""SIGTERM / SIGINT as a `threading.Event` that every thread of a service can wait on.

Setting an Event from a Python signal handler can deadlock (the handler runs on the main thread,
which may be holding the Event's lock at that moment). So the signals are blocked in every thread
and one daemon thread takes them with `sigwait` and sets the Event. The mask is inherited by the
threads created afterwards (librdkafka's and the tab workers), which is why `install()` must run
before any Kafka client or thread is created.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class StopRequest:
    """Set once the process was asked to stop; remembers which signal asked."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: signal.Signals | None = None

    def install(self) -> None:
        """Route SIGTERM and SIGINT to this request from now on (call once, on the main thread)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        threading.Thread(target=self._take_signal, name="stop-signal", daemon=True).start()

    def _take_signal(self) -> None:
        number = signal.sigwait(STOP_SIGNALS)
        self.signal = signal.Signals(number)
        self._event.set()

    def set(self) -> None:
        """Stop without a signal (the service itself decided to)."""
        self._event.set()

    @property
    def reason(self) -> str:
        """`SIGTERM` / `SIGINT`, or `request` when stopped by `set()`."""
        return self.signal.name if self.signal is not None else "request"

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until stopped or `timeout_s` passed; True when stopped (like `Event.wait`)."""
        return self._event.wait(timeout_s)


LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def start_service(level: int = logging.INFO) -> StopRequest:
    """What every service does first, after reading its settings: log to stderr with the time,
    then take SIGTERM / SIGINT as the returned request. In this order and before any Kafka client
    or thread exists, which `StopRequest.install` needs (see the module docstring)."""
    logging.basicConfig(stream=sys.stderr, level=level, format=LOG_FORMAT)
    stop = StopRequest()
    stop.install()
    return stop
