"""A scenario's SLO table and plots as pytest-html extras (its documented `extras` API).

pytest-html is optional: this module is only imported once the plugin has seen that pytest-html
is active, and the extras are built with pytest-html's own `extras` helpers so that its
self-contained mode inlines the plots as it does any image.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from pytest_medpubsub.plots import DISTRIBUTION_PNG, LATENCY_PNG, SCALING_PNG
from pytest_medpubsub.reports.markup import join, link, tag
from pytest_medpubsub.reports.run_page import REPORT_HTML, slo_table, verdict_word

_PLOTS = (
    (LATENCY_PNG, "latency"),
    (DISTRIBUTION_PNG, "latency distribution"),
    (SCALING_PNG, "patients, makers and lag"),
)


def extras_for(report_json: Path) -> list[dict[str, Any]]:
    """The SLO table (HTML) and the three plots (PNG) of the run whose report is `report_json`."""
    from pytest_html import extras

    document = json.loads(report_json.read_text(encoding="utf-8"))
    directory = report_json.parent
    summary = join(
        [
            tag(
                "p",
                tag("strong", f"medpubsub: {verdict_word(document)}"),
                " · ",
                link((directory / REPORT_HTML).resolve().as_uri(), "the run's report.html"),
                class_="medpubsub-verdict",
            ),
            tag("div", slo_table(document), class_="medpubsub-slo"),
        ]
    )
    found: list[dict[str, Any]] = [extras.html(summary)]
    for name, caption in _PLOTS:
        plot = directory / name
        if plot.is_file():
            encoded = base64.b64encode(plot.read_bytes()).decode("ascii")
            found.append(extras.png(encoded, name=caption))
    return found
