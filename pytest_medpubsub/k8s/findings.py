"""What an offline check reports: which object broke which rule, and how.

Every check returns a list of findings instead of raising at the first problem, so that one run
of `make test` (or `python -m pytest_medpubsub.k8s.check`) shows everything that is wrong at once,
and a test can assert on the exact object and rule a broken manifest trips.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One broken rule.

    `object` names the Kubernetes object (`Kind/namespace/name`) or file; `rule` is a stable
    identifier such as `security.readOnlyRootFilesystem` that tests and readers can grep for;
    `where` says which render (overlay) or file it came from, when that matters.
    """

    object: str
    rule: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        prefix = f"[{self.where}] " if self.where else ""
        return f"{prefix}{self.object}: {self.rule}: {self.message}"
