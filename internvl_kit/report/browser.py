"""Open a report in the system's headless Chromium (Debian's `chromium`), driven by Playwright, with every
request that does not go to file:// blocked and recorded: what a reader with no network would see.

Used for `--screenshot` and by the tests. Playwright is only the driver here: it never downloads a browser.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Without the background-networking flags Chromium keeps dialling Google's hosts; as root it needs --no-sandbox.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio"]


class BrowserError(Exception):
    pass


def chromium() -> str:
    """The browser to drive: $INTERNVL_KIT_CHROMIUM, else the first Chromium on PATH."""
    named = os.environ.get("INTERNVL_KIT_CHROMIUM")
    found = named or next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if not found or not Path(found).exists():
        raise BrowserError("no Chromium found: install Debian's package (apt-get install chromium) or point "
                           "INTERNVL_KIT_CHROMIUM at a Chromium binary")
    return found


class ReportPage:
    """A loaded report, and what went wrong while loading it."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.blocked: list[str] = []

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextmanager
def open_report(path: Path, width: int = 1280, height: int = 900) -> Iterator[ReportPage]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise BrowserError("Playwright is not installed (pip install -e .[dev]): it drives the system Chromium") \
            from None
    binary = chromium()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=binary, args=FLAGS)
            try:
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                report = ReportPage(page)

                def gate(route: Any) -> None:
                    if route.request.url.startswith("file://"):
                        route.continue_()
                    else:
                        report.blocked.append(route.request.url)
                        route.abort()
                context.route("**/*", gate)
                page.on("console", lambda m: report.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: report.console_errors.append(f"uncaught: {e}"))
                page.goto(Path(path).resolve().as_uri(), wait_until="load")
                yield report
            finally:
                browser.close()
    except Error as e:
        raise BrowserError(f"Chromium ({binary}) failed: {str(e).splitlines()[0]}") from None
