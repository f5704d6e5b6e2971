"""Open a page in headless Chromium and say what a person would have seen: the browser check.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: requests on
fd 3, answers on fd 4, each a JSON object ended by a NUL byte), so no port is opened and no
driver package is needed. The check loads the page from its file, waits for the load event and
for every image to decode, collects console errors, uncaught exceptions and any request that
left the file (a self-contained page makes none), and takes a screenshot of the first screen.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_medpubsub import processes

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = (1280, 900)
_LOCAL_SCHEMES = ("file:", "data:", "about:")
# Runs in the child instead of a pre-exec hook (unsafe beside the observer's threads): puts the
# request pipe on fd 3 and the answer pipe on fd 4, then becomes Chromium.
_PLACE_PIPES = (
    "import os, sys; read, write = int(sys.argv[1]), int(sys.argv[2]); "
    "os.dup2(read, 3); os.dup2(write, 4); os.close(read); os.close(write); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)

# Each image's decode is awaited, then the page says how many it has and how many decoded.
_IMAGES_CHECK = """
Promise.all(Array.from(document.images, (image) => image.decode().then(() => true, () => false)))
  .then(() => ({
    total: document.images.length,
    decoded: Array.from(document.images).filter(
      (image) => image.complete && image.naturalWidth > 0).length,
    title: document.title,
    text: document.body ? document.body.innerText : "",
  }))
"""


class BrowserUnavailable(Exception):
    """No Chromium on this machine (the check is then skipped, with this one-line reason)."""


class BrowserError(Exception):
    """Chromium did not load the page or answer in time; the message says what it saw last."""


@dataclass
class PageCheck:
    """What the browser saw of one page."""

    title: str = ""
    text: str = ""
    images_total: int = 0
    images_decoded: int = 0
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def clean(self) -> bool:
        return (
            not self.console_errors
            and not self.external_requests
            and self.images_decoded == self.images_total
        )

    def describe(self) -> str:
        return (
            f"{self.images_decoded}/{self.images_total} images decoded, "
            f"console errors: {self.console_errors or 'none'}, "
            f"requests beyond the file: {self.external_requests or 'none'}"
        )


def _above_nine(descriptor: int) -> int:
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(descriptor)
    return moved


def find_chromium() -> str:
    """The path of a Chromium executable; raises BrowserUnavailable naming what was looked for."""
    explicit = os.environ.get("MEDPUBSUB_CHROMIUM")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(
        f"no Chromium found ({', '.join(CANDIDATES)} on PATH, or MEDPUBSUB_CHROMIUM); "
        "on Debian: apt-get install chromium"
    )


def check_page(
    page: Path,
    screenshot: Path | None = None,
    timeout_s: float = 60.0,
    viewport: tuple[int, int] = VIEWPORT,
) -> PageCheck:
    """Load `page` in headless Chromium and report what it saw (screenshot of the first screen
    into `screenshot` when given)."""
    executable = find_chromium()
    with (
        tempfile.TemporaryDirectory(
            prefix="medpubsub-chromium-", ignore_cleanup_errors=True
        ) as profile,
        _Browser(executable, Path(profile), timeout_s) as browser,
    ):
        return browser.check(page.resolve(), screenshot, viewport)


class _Browser:
    """One Chromium process and its DevTools pipe; stopped by pid on exit."""

    def __init__(self, executable: str, profile: Path, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The ends Chromium gets are moved above 9 first, so that placing them on 3 and 4 can
        # never overwrite one with the other.
        to_browser_read = _above_nine(to_browser_read)
        from_browser_write = _above_nine(from_browser_write)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PLACE_PIPES,
                str(to_browser_read),
                str(from_browser_write),
                executable,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # root in CI containers; the page is our own file
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            pass_fds=(to_browser_read, from_browser_write),
            start_new_session=True,  # its renderers share its group, and are stopped with it
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._buffer = b""
        self._messages: list[dict[str, Any]] = []

    def __enter__(self) -> _Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._process.poll() is None:
                self._send_raw("Browser.close", {})
        except (BrowserError, OSError):
            pass
        processes.stop(self._process, grace_s=5)
        # Its renderer and utility processes are in its process group (its pid): make sure none
        # outlives it, so that nothing writes into the profile while it is removed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        for descriptor in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self._stderr.close()

    # ---------------------------------------------------------------- the check

    def check(self, page: Path, screenshot: Path | None, viewport: tuple[int, int]) -> PageCheck:
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._call(f"{domain}.enable", {}, session)
        width, height = viewport
        self._call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self._call("Page.navigate", {"url": page.as_uri()}, session)
        self._wait_for_event("Page.loadEventFired", session, f"the load event of {page}")
        images = self._call(
            "Runtime.evaluate",
            {"expression": _IMAGES_CHECK, "awaitPromise": True, "returnByValue": True},
            session,
        )
        value = images.get("result", {}).get("value") or {}
        result = PageCheck(
            title=str(value.get("title", "")),
            text=str(value.get("text", "")),
            images_total=int(value.get("total", 0)),
            images_decoded=int(value.get("decoded", 0)),
        )
        if screenshot is not None:
            shot = self._call("Page.captureScreenshot", {"format": "png"}, session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
        result.console_errors = self._console_errors(session)
        result.external_requests = self._external_requests(session)
        return result

    def _console_errors(self, session: str) -> list[str]:
        errors = []
        for message in self._events(session):
            params = message.get("params", {})
            method = message.get("method")
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                texts = [
                    str(arg.get("value", arg.get("description", ""))) for arg in params["args"]
                ]
                errors.append("console: " + " ".join(texts))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                thrown = details.get("exception", {}).get("description") or details.get("text")
                errors.append(f"exception: {thrown}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')}")
        return errors

    def _external_requests(self, session: str) -> list[str]:
        return [
            str(message["params"]["request"]["url"])
            for message in self._events(session)
            if message.get("method") == "Network.requestWillBeSent"
            and not str(message["params"]["request"]["url"]).startswith(_LOCAL_SCHEMES)
        ]

    # ---------------------------------------------------------------- the protocol

    def _events(self, session: str) -> list[dict[str, Any]]:
        return [m for m in self._messages if "method" in m and m.get("sessionId") == session]

    def _call(
        self, method: str, params: dict[str, Any], session: str | None = None
    ) -> dict[str, Any]:
        ident = self._send_raw(method, params, session)
        answer = self._wait_for(
            lambda message: message.get("id") == ident, f"the answer to {method}"
        )
        if "error" in answer:
            raise BrowserError(f"Chromium refused {method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def _send_raw(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _wait_for_event(self, method: str, session: str, describe: str) -> None:
        self._wait_for(
            lambda message: message.get("method") == method and message.get("sessionId") == session,
            describe,
        )

    def _wait_for(self, accept: Callable[[dict[str, Any]], bool], describe: str) -> dict[str, Any]:
        """Read messages until one satisfies `accept`; every message is kept for later."""
        while True:
            for message in self._messages:
                if accept(message) and not message.get("_taken"):
                    message["_taken"] = True
                    return message
            remaining = self._deadline - time.monotonic()
            if remaining <= 0 or self._process.poll() is not None:
                raise BrowserError(self._why(describe))
            self._read_some(remaining)

    def _read_some(self, remaining: float) -> None:
        import select

        ready, _, _ = select.select([self._from_browser], [], [], min(remaining, 1.0))
        if not ready:
            return
        chunk = os.read(self._from_browser, 1 << 20)
        if not chunk:
            return
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\0")
        self._messages.extend(json.loads(part) for part in complete if part)

    def _why(self, describe: str) -> str:
        state = (
            f"exited with status {self._process.returncode}"
            if self._process.poll() is not None
            else f"no answer within {self._timeout_s:g} s"
        )
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        last = [m.get("method", f"answer {m.get('id')}") for m in self._messages[-5:]]
        return (
            f"Chromium {state} while waiting for {describe}; last messages: {last or 'none'}; "
            f"stderr: {' | '.join(tail) or 'empty'}"
        )
