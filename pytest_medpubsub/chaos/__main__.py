"""`python -m pytest_medpubsub.chaos [--discovery-path FILE] [--no-system-info]`.

Writes the discovery document `chaos discover` would write for this extension (see the package
docstring for why `chaos discover` itself cannot find it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pytest_medpubsub.chaos import discover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.chaos",
        description="Discover medpubsub's Chaos Toolkit activities (as `chaos discover` does).",
    )
    parser.add_argument("--discovery-path", type=Path, default=Path("discovery.json"))
    parser.add_argument("--no-system-info", action="store_true")
    arguments = parser.parse_args(argv)
    discovery = discover(discover_system=not arguments.no_system_info)
    arguments.discovery_path.write_text(json.dumps(discovery, indent=2, default=str) + "\n")
    names = ", ".join(activity["name"] for activity in discovery["activities"])
    print(f"{len(discovery['activities'])} activities ({names}) -> {arguments.discovery_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
