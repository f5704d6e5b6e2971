"""Where `chaos discover medpubsub --no-install` finds medpubsub's Chaos Toolkit extension.

Chaos Toolkit's discovery takes a *distribution* name, imports that distribution's first
top-level package (setuptools lists them sorted, and this one sorts before `medpubsub` and
`pytest_medpubsub`) and calls its `discover`. The actions and probes themselves live in
`pytest_medpubsub.chaos`, next to the harness they share their code with; this package only
names the entry point, after Chaos Toolkit's own `chaos<target>` convention (chaosk8s, chaosaws).
`--no-install` matters: without it Chaos Toolkit first runs `pip install -U medpubsub`.
"""

from __future__ import annotations

from pytest_medpubsub.chaos import __version__, discover

__all__ = ["__version__", "discover"]
