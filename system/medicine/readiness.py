"""A maker's readiness file: present while an order on any partition it owns commits at once.

A maker owns partitions before it can commit on them: each is registered under its
transactional id first (producers.py), a round trip per partition that takes seconds for a maker
on a small CPU share. Whoever waits for warm makers (the pod's startup probe, the local
harness) must wait for that too, or the first orders carry the registrations in their latency.

The file lists the partitions, one `<topic> <partition>` per line, so that a harness can check
that the ready makers cover every partition. It is replaced atomically and removed when the
maker stops being ready (a new partition arrived) and when it exits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from medpubsub.medicine.lines import PartitionKey


class ReadinessFile:
    """Keeps `path` (None: nothing is kept) in step with the partitions the maker serves."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._written: str | None = None

    def update(self, partitions: Sequence[PartitionKey]) -> None:
        text = "".join(f"{topic} {partition}\n" for topic, partition in partitions)
        if self._path is None or text == self._written:
            return
        if text:
            staged = self._path.with_name(f".{self._path.name}.{os.getpid()}")
            staged.write_text(text)
            staged.replace(self._path)  # atomic: a reader sees the old list or the new one
        else:
            self._path.unlink(missing_ok=True)
        self._written = text

    def clear(self) -> None:
        self.update([])


def read_ready_partitions(path: Path) -> set[PartitionKey]:
    """The partitions a readiness file lists (none when it is absent)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return set()
    found: set[PartitionKey] = set()
    for line in text.splitlines():
        topic, _, partition = line.rpartition(" ")
        if topic and partition.isdigit():
            found.add((topic, int(partition)))
    return found
