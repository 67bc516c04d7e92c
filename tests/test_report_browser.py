"""The audit report in a real browser: headless Chromium, driven by Playwright.

The report of the Salford drug action team agreement is opened from its file, as an auditor
would open it, on a desktop and on a phone-sized screen, and printed. The figures and names
must be in the rendered text, the chart must be drawn, nothing may be fetched from anywhere,
and the print layout must keep its tables whole. Screenshots and the PDF are left in the
test's tmp_path for a person to look at.

The browser is the system Chromium (``/usr/bin/chromium``, or ``LEDGER_TEST_CHROMIUM``): the
tests skip, saying why, where there is none or it cannot start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.cli import app
from commands.demo import REFERENCE, record_salford
from ledger.application import Ledger
from ledger.storage import parse_location
from tests.conftest import ORIGIN
from tests.keys import fixed_key
from tests.test_report import checkpoint

CHROMIUM = os.environ.get("LEDGER_TEST_CHROMIUM", "/usr/bin/chromium")
#: A headless browser that reaches for nothing: no first-run, sync, updates or QUIC.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SIGNATORIES = ("Anne Williams", "Authorised signatory")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ledger report`` of the Salford agreement, signed, checkpointed and cosigned."""
    folder = tmp_path_factory.mktemp("report")
    url = str(folder / "ledger.db")
    ledger = Ledger(parse_location(url), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
        record_salford(ledger, fixed_key("salford-city-council"), fixed_key("salford-pct"))
        checkpoint(ledger, "salford-pct")
    finally:
        ledger.close()
    out = folder / "salford-dat-2004.html"
    result = CliRunner().invoke(app, ["report", REFERENCE, "-o", str(out), "--ledger", url],
                                env={"LEDGER_URL": None})
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or a skip saying why there is none."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install '.[test]'")
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); "
                    f"the browser tests need one")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable,
                                                  args=CHROMIUM_ARGS, headless=True)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} cannot be started: "
                        f"{str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


def open_report(browser: Any, path: Path, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    """A page showing the report, and every URL it requested."""
    page = browser.new_page(viewport=viewport)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests


def test_the_report_reads_in_a_browser(browser: Any, report_file: Path, tmp_path: Path) -> None:
    page, requests = open_report(browser, report_file, DESKTOP)
    try:
        text = page.inner_text("body")
        total = page.locator("#budget-table tr.total").first
        assert "Pool total 2003/04" in total.inner_text()
        assert "2,262,440.00" in total.inner_text()
        assert "2,513,360.00" in page.locator("#budget-table tr.total").nth(1).inner_text()
        for name in SIGNATORIES:
            assert name in text
        assert "Verified: every check passed" in text
        assert page.locator("#timeline-table tbody tr").count() == 18

        chart = page.locator("#budget-chart").bounding_box()
        assert chart is not None
        assert chart["width"] > 300
        assert chart["height"] > 100
        bar = page.locator("#budget-chart rect").first.bounding_box()
        assert bar is not None
        assert bar["width"] > 0
        assert bar["height"] > 0

        # Opened from its file, the page asks for nothing else.
        assert requests == [report_file.as_uri()]
        page.screenshot(path=str(tmp_path / "report-desktop.png"), full_page=True)
    finally:
        page.close()


def test_on_a_phone_the_page_fits_and_wide_tables_scroll_in_place(
        browser: Any, report_file: Path, tmp_path: Path) -> None:
    page, _ = open_report(browser, report_file, PHONE)
    try:
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], "the page scrolls sideways on a phone"
        chart = page.locator("#budget-chart").bounding_box()
        assert chart is not None
        assert 0 < chart["width"] <= PHONE["width"]
        # A table wider than the screen scrolls inside its own wrapper.
        overflow = page.evaluate("""() => [...document.querySelectorAll('.table-wrap')]
            .map(w => getComputedStyle(w).overflowX)""")
        assert set(overflow) == {"auto"}
        page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
    finally:
        page.close()


def test_printed_the_tables_stay_whole_with_their_headers(
        browser: Any, report_file: Path, tmp_path: Path) -> None:
    page, _ = open_report(browser, report_file, DESKTOP)
    try:
        page.emulate_media(media="print")
        tables = page.evaluate("""() => [...document.querySelectorAll('table')].map(t => {
            const box = t.getBoundingClientRect();
            const head = t.tHead ? getComputedStyle(t.tHead).display : null;
            const row = getComputedStyle(t.querySelector('tbody tr')).breakInside;
            return [box.width, box.height, head, row];
        })""")
        assert len(tables) >= 4
        for width, height, head, row in tables:
            assert width > 0
            assert height > 0
            assert head == "table-header-group"
            assert row == "avoid"
        assert page.locator("nav.toc").is_hidden()
        assert page.locator("#budget-chart").bounding_box() is not None
        pdf = page.pdf(path=str(tmp_path / "report.pdf"), format="A4", print_background=True)
        assert pdf.startswith(b"%PDF")
        page.screenshot(path=str(tmp_path / "report-print.png"), full_page=True)
    finally:
        page.close()
