"""Finding the project's manifests: the one source of truth for topics and the ScaledJob.

The local platform reads the same files a cluster gets (`k8s/base/kafka-topics.yaml`,
`keda/medicine-scaledjob.yaml`), so the project directory has to be found from wherever the
harness runs: `MEDPUBSUB_PROJECT_DIR`, the current directory or its parents, or the checkout
this package was installed from in editable mode.
"""

from __future__ import annotations

import os
from pathlib import Path

TOPICS_MANIFEST = Path("k8s/base/kafka-topics.yaml")
SCALEDJOB_MANIFEST = Path("keda/medicine-scaledjob.yaml")


class ProjectNotFound(Exception):
    """The manifests are not reachable from here."""


def project_dir() -> Path:
    explicit = os.environ.get("MEDPUBSUB_PROJECT_DIR")
    if explicit:
        candidate = Path(explicit)
        if not (candidate / SCALEDJOB_MANIFEST).exists():
            raise ProjectNotFound(
                f"MEDPUBSUB_PROJECT_DIR={explicit} has no {SCALEDJOB_MANIFEST}; point it at a "
                "medpubsub checkout."
            )
        return candidate
    here = Path(__file__).resolve()  # an editable install links back into the checkout
    for start in (Path.cwd(), here.parent):
        for directory in (start, *start.parents):
            if (directory / SCALEDJOB_MANIFEST).exists():
                return directory
    raise ProjectNotFound(
        f"cannot find {SCALEDJOB_MANIFEST} from {Path.cwd()}; run from a medpubsub checkout or "
        "set MEDPUBSUB_PROJECT_DIR."
    )


def state_dir() -> Path:
    """`.medpubsub/` of the current directory: where `medpubsub up` leaves its state for others."""
    return Path.cwd() / ".medpubsub"
