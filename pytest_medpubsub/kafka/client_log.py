"""librdkafka's own log lines from the harness's clients go to Python logging, not to stderr.

A broker stopped at the end of a run, or killed on purpose by a chaos experiment, makes every
connected client log connection refusals. They are expected and would bury the harness's own
output; routed here they appear only where logging is shown (pytest's "Captured log" of a failed
test, or a configured handler).
"""

from __future__ import annotations

import logging
from typing import Any

CLIENT_LOG = logging.getLogger("medpubsub.librdkafka")
CLIENT_LOG.addHandler(logging.NullHandler())  # keeps Python's last-resort stderr handler out


def quiet(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with librdkafka's log lines sent to `CLIENT_LOG`."""
    return config | {"logger": CLIENT_LOG}
