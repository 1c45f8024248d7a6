"""What every report must show in a real browser (Debian's headless Chromium, the network blocked)."""
from __future__ import annotations

from pathlib import Path

from conftest import ROOT
from internvl_kit.report.browser import ReportPage

ARTIFACTS = ROOT / "test-artifacts"          # screenshots: the CI's artifacts, ignored by git

PAGE_FACTS = """() => ({
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 30), ok: i.complete && i.naturalWidth > 0})),
  charts: Array.from(document.querySelectorAll('[data-chart]')).map(box => ({
    title: (box.querySelector('h3') || {}).textContent,
    svg: !!box.querySelector('svg'),
    drawn: Array.from(box.querySelectorAll('path.curve')).filter(p => (p.getAttribute('d') || '').length > 1
             && p.getBBox().width + p.getBBox().height > 0).length
           + box.querySelectorAll('rect.bar').length + box.querySelectorAll('circle.point').length,
    curves: box.querySelectorAll('path.curve').length})),
  formulas: Array.from(document.querySelectorAll('.formula math')).map(m => m.getBoundingClientRect().width),
  entries: document.querySelectorAll('.gallery .entry').length,
})"""


def check_page(page: ReportPage, screenshot: str) -> dict:
    """No console error, no request beyond file://, every image decoded, every chart drawn; a screenshot."""
    facts = page.evaluate(PAGE_FACTS)
    assert page.console_errors == [], page.console_errors
    assert page.blocked == [], page.blocked
    assert all(i["ok"] for i in facts["images"]), [i for i in facts["images"] if not i["ok"]]
    assert facts["charts"] and all(c["svg"] and c["drawn"] > 0 for c in facts["charts"]), facts["charts"]
    assert all(w > 0 for w in facts["formulas"])
    page.screenshot(ARTIFACTS / screenshot)
    assert (ARTIFACTS / screenshot).stat().st_size > 10_000
    return facts


def shown(page: ReportPage) -> int:
    return page.evaluate("() => document.querySelectorAll('.gallery .entry:not(.hidden)').length")


def filter_by(page: ReportPage, status: str = "all", text: str = "") -> int:
    page.page.select_option("#filter-status", status)
    page.page.fill("#filter-text", text)
    return shown(page)


def assert_report_file(path: Path) -> None:
    assert path.is_file() and path.stat().st_size < 10_000_000
