"""The report pages in a real browser: headless Chromium loads them from their file.

A page that opens in an editor can still be blank in a browser (an image that does not decode,
a stray script error, a stylesheet fetched from the network); these tests look at what Chromium
shows. They skip, with one line, where Chromium is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_medpubsub.reports.browser import (
    VIEWPORT,
    BrowserUnavailable,
    PageCheck,
    check_page,
    find_chromium,
)
from tests.test_html_report import a_failed_run
from tests.test_report import png_size

# Chromium starts for each check: seconds, so `make check` leaves these to `make test`.
pytestmark = pytest.mark.slow

ONE_PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return find_chromium()
    except BrowserUnavailable as missing:
        pytest.skip(str(missing))


def test_a_failed_run_page_renders_whole_in_chromium(chromium: str, tmp_path: Path) -> None:
    directory = a_failed_run(tmp_path)
    (directory / "diagnostics").mkdir()
    (directory / "diagnostics" / "kafka-server.log").write_text("broker log\n")
    from pytest_medpubsub.report import render_again

    render_again(directory)
    seen = check_page(directory / "report.html", tmp_path / "screenshot.png")

    assert seen.clean, seen.describe()
    assert (seen.images_total, seen.images_decoded) == (3, 3)
    assert seen.title.startswith("SLO FAILED")
    for shown in ("SLO FAILED", "latency_p95", "0.80 s over, +27 %", "diagnostics/", "maker_kill"):
        assert shown in seen.text, f"{shown!r} not on the page"
    assert png_size(tmp_path / "screenshot.png") == VIEWPORT


def test_the_check_sees_what_a_broken_page_gets_wrong(chromium: str, tmp_path: Path) -> None:
    """A page with a corrupt image, a script error and a fetch from the network must fail it."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        f'<img src="data:image/png;base64,{ONE_PIXEL_PNG}">'
        '<img src="data:image/png;base64,iVBORw0KGgoAAAAA">'
        '<img src="http://127.0.0.1:9/plot.png">'
        "<script>console.error('drawn wrong'); undefinedFunction();</script>"
        "</body></html>"
    )
    seen: PageCheck = check_page(page)
    assert not seen.clean
    assert (seen.images_total, seen.images_decoded) == (3, 1)
    assert any("drawn wrong" in error for error in seen.console_errors), seen.console_errors
    assert any("undefinedFunction" in error for error in seen.console_errors), seen.console_errors
    assert seen.external_requests == ["http://127.0.0.1:9/plot.png"]


def test_the_demo_prints_its_page_and_the_page_renders(
    chromium: str, tmp_path: Path, medpubsub_kafka: str
) -> None:
    """`medpubsub demo` (what `make demo` runs), on the session's broker: its last line is the
    path of report.html, and Chromium shows that page whole."""
    report = tmp_path / "demo-report"
    demo = subprocess.run(
        [sys.executable, "-m", "medpubsub", "demo", "--patients", "1", "--duration", "12",
         "--kafka", medpubsub_kafka, "--report", str(report)],
        cwd=tmp_path,
        env=os.environ | {"MEDPUBSUB_PROJECT_DIR": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )  # fmt: skip
    # 0: SLOs met, 1: an SLO missed (a loaded machine can); either way the page says which.
    assert demo.returncode in (0, 1), demo.stdout[-3000:] + demo.stderr[-3000:]
    lines = demo.stdout.strip().splitlines()
    # After the page's path, a failed run names its logs (diagnostics/).
    assert f"report: {report / 'report.html'}" in lines[-2:], lines[-3:]
    # One patient keeps 2 orders in flight: one maker's workers hold them, two are kept warm.
    assert any(
        line.startswith("capacity: 1 patient need 1 maker (+ 2 warm); peak ") for line in lines
    )
    capacity = json.loads((report / "report.json").read_text())["capacity"]
    assert (capacity["makers_needed"], capacity["warm_floor"]) == (1, 2)
    assert capacity["peak_makers"] >= 2
    seen = check_page(report / "report.html")
    assert seen.clean, seen.describe()
    assert (seen.images_total, seen.images_decoded) == (3, 3)
    assert seen.title.startswith("SLO met" if demo.returncode == 0 else "SLO FAILED")
    assert "medpubsub demo" in seen.text
