"""The analysis report opens in a real headless Chromium: every plot decodes, the window is shown."""

from __future__ import annotations

import pytest

from analysis import analyze
from analysis.report import write_report
from tests.analysis.conftest import simulated_records
from tests.serving.test_ui_browser import _browser_or_skip


@pytest.mark.slow
def test_the_report_renders_in_chromium(tmp_path) -> None:
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    records, _ = simulated_records(3000)
    html, _ = write_report(analyze(records, network=False, per_class=False), tmp_path / "report")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
            window = page.inner_text(".window")
        finally:
            browser.close()
    assert len(sizes) >= 7 and all(done and width > 100 for done, width in sizes)
    assert "Suggested window" in window and "belt_speed" in window and "Predicted fail rate" in window
