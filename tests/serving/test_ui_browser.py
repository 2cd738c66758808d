"""The QA page in a real headless browser (Debian's chromium driven by Playwright) against a real
service: it shows the verdicts, and a label correction made by clicking reaches the sample store.

CI installs chromium (.ci/run), so there a missing browser fails the test; on a workstation
without it the test is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.config import load_settings
from serving.server import start_in_background
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg

CHROMIUM = "/usr/bin/chromium"
STATION = '<img src=x onerror="window.__pwned=1">cell'  # a hostile station id must show as text


def _browser_or_skip() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    why = None if path else "no chromium (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        why = "playwright is not installed (pip install -e '.[dev]')"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the browser test (.ci/run installs chromium)")
        pytest.skip(why)
    return path  # type: ignore[return-value]


@contextmanager
def _signed_in_page(chromium: str, url: str) -> Iterator[Any]:
    """The QA page in headless Chromium, the engineer key entered."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{url}/ui")
            page.fill("#key", ENGINEER_KEY)
            page.click("#keyform button[type=submit]")
            yield page
        finally:
            browser.close()


@pytest.mark.slow
def test_page_shows_live_verdicts_and_a_click_relabels_into_the_sample_store(bundle_path: Path, tmp_path: Path):
    chromium = _browser_or_skip()

    samples = tmp_path / "samples"
    settings = load_settings(
        model=bundle_path, port=0, station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY, threads=1,
        verdict_db=tmp_path / "verdicts.sqlite", keep_images_dir=tmp_path / "kept",
        keep_images_for="fail,review,pass", samples_dir=samples, spc_baseline=20, spc_window=5,
    )
    with start_in_background(settings) as server:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": STATION_KEY}) as client:
            for i in range(12):
                r = client.post("/v1/inspect", content=jpeg(i), headers={"Content-Type": "image/jpeg",
                                                                          "X-Station-Id": STATION})
                assert r.status_code == 200
        with _signed_in_page(chromium, server.url) as page:
                page.wait_for_selector(".station .tile img[src^='blob:']", timeout=30_000)
                assert page.inner_text(".station h2").startswith(STATION)  # shown as text, not markup
                assert page.locator(".station .tile").count() == 12
                assert "12 parts" in page.inner_text(".station h2")
                assert page.evaluate("window.__pwned") is None
                assert "fail ≥ 0.6, review ≥ 0.4" in page.inner_text("#model")  # the operating point QA works under

                page.click("nav button[data-tab=review]")
                page.wait_for_selector(".review-card button.label", timeout=30_000)
                card = page.locator(".review-card").first
                verdict_id = card.get_attribute("data-id")
                card.locator("button.label[data-label=dent]").click()
                page.wait_for_selector(f".review-card[data-id='{verdict_id}'] .result:is(.ok, .bad)", timeout=30_000)
                saved = card.locator(".result").inner_text()
    assert saved.startswith("saved as sample "), saved
    stored = samples / saved.removeprefix("saved as sample ")
    assert stored.is_file() and stored.parent.name == "dent"
    assert "dent" in (samples / "manifest.csv").read_text() and verdict_id


@pytest.mark.slow
def test_page_says_when_the_model_was_trained_on_good_parts_only(bundle_path: Path, tmp_path: Path) -> None:
    chromium = _browser_or_skip()

    model = tmp_path / "bundle"  # the card of a good-only model (only card.json differs, as recalibration writes)
    shutil.copytree(bundle_path, model)
    card = json.loads((model / "card.json").read_text())
    card["extra"]["good_only"] = {"synthesized": ["draem", "crack"], "share": 0.5, "false_reject_budget": 0.01,
                                  "calibrated_on": "val split", "can_miss": "defects unlike every synthesized kind"}
    (model / "card.json").write_text(json.dumps(card))
    settings = load_settings(model=model, port=0, station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY, threads=1,
                             verdict_db=tmp_path / "verdicts.sqlite")
    with start_in_background(settings) as server, _signed_in_page(chromium, server.url) as page:
        tag = page.wait_for_selector("#model .good-only", timeout=30_000)
        assert tag.inner_text() == "good-only model"
        assert "can miss defects unlike every synthesized kind" in (tag.get_attribute("title") or "")


@pytest.mark.slow
def test_each_station_card_shows_what_drives_its_failures(bundle_path: Path, tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    from tests.serving.test_process_params import _log_simulated_line

    db = tmp_path / "verdicts.sqlite"
    _log_simulated_line(db, 4000)  # a line whose belt speed, temperature and tool wear drive its defects
    settings = load_settings(model=bundle_path, port=0, station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY,
                             threads=1, verdict_db=db)
    with start_in_background(settings) as server:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": STATION_KEY}) as client:
            for i in range(3):  # the station is live: it has a card
                r = client.post("/v1/inspect", content=jpeg(i), headers={
                    "Content-Type": "image/jpeg", "X-Station-Id": "press-2", "X-Process": '{"belt_speed": 1.1}'})
                assert r.status_code == 200
        with _signed_in_page(chromium, server.url) as page:
            line = page.wait_for_selector(".station .drivers:has-text('belt_speed')", timeout=120_000)
            text = line.inner_text()
    assert text.startswith("process drivers:") and "tool_wear" in text and "temperature" in text
    assert "lowest fail rate at" in text
