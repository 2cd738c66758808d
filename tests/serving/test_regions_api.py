"""Defect regions of a map model in every answer: inspect, batch, explain, the verdict log, and the
QA page's review and upload views (in a real headless browser)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from inspection.predictor import Predictor
from serving.config import load_settings
from serving.server import start_in_background
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY
from tests.serving.test_ui_browser import _browser_or_skip
from tests.support import crack_frame, encode, make_map_bundle

PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def map_bundle(tmp_path_factory):
    frame = crack_frame()
    return make_map_bundle(tmp_path_factory.mktemp("map") / "b", frame), frame


def test_inspect_batch_explain_and_the_log_carry_the_regions(make_client, map_bundle) -> None:
    bundle, frame = map_bundle
    data = encode(frame)
    expected = Predictor(bundle, threads=1).inspect(data).verdict.to_dict()["regions"]
    assert expected
    with make_client(Predictor(bundle, threads=1)) as client:
        one = client.post("/v1/inspect", content=data, headers={**PNG, "X-Station-Id": "cam-1"})
        many = client.post("/v1/inspect/batch", files=[("files", ("a.png", data, "image/png"))])
        ex = client.post("/v1/inspect?explain=true", content=data, headers=PNG)
        logged = client.get("/v1/verdicts", params={"station": "cam-1"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["verdict"] == "fail" and body["regions"] == expected
    assert many.json()["items"][0]["result"]["regions"] == expected
    overlay_b64 = ex.json()["explanation"]["overlay_png"]
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(overlay_b64), np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape[:2] == frame.shape and ex.json()["explanation"]["target"] == expected[0]["label"]
    px, py = ex.json()["explanation"]["peak"]
    x, y, w, h = expected[0]["box"]
    assert x - 8 <= px <= x + w + 8 and y - 8 <= py <= y + h + 8  # the overlay's peak is the region's
    (row,) = logged.json()["verdicts"]
    assert row["regions"] == expected and (row["width"], row["height"]) == (420, 300)


def test_a_log_written_before_regions_gains_the_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    import sqlite3

    from serving.sql import SqliteDb
    from serving.verdict_store import VERDICTS, VerdictQueries, create

    db = tmp_path / "old.sqlite"
    cols = ", ".join(f"{c} {kind}" for c, kind in VERDICTS.columns if c not in ("regions", "width", "height"))
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE verdicts (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
    with conn:
        conn.execute("INSERT INTO verdicts (ts, request_id, image_sha256, verdict, label, confidence, defect_score, "
                     "scores, model_name, model_version, latency_ms, batch_size) VALUES "
                     "(1, 'r1', 'ab', 'pass', 'good', 0.9, 0.1, '{}', 'm', 'v', 3.0, 1)")
    conn.close()
    create(SqliteDb(db))
    (row,) = VerdictQueries(db).query(limit=5)
    assert row["request_id"] == "r1" and row["regions"] == [] and row["width"] is None


@pytest.mark.slow
def test_review_and_upload_views_draw_the_region_boxes(map_bundle, tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    bundle, frame = map_bundle
    settings = load_settings(model=bundle.path, port=0, station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY,
                             threads=1, verdict_db=tmp_path / "v.sqlite", keep_images_dir=tmp_path / "kept",
                             keep_images_for="fail,review", samples_dir=tmp_path / "samples")
    upload = tmp_path / "part.png"
    upload.write_bytes(encode(frame))
    with start_in_background(settings) as server:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": STATION_KEY}) as client:
            r = client.post("/v1/inspect", content=encode(frame), headers={**PNG, "X-Station-Id": "cam-1"})
            assert r.status_code == 200 and r.json()["regions"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.goto(f"{server.url}/ui")
                page.fill("#key", ENGINEER_KEY)
                page.click("#keyform button[type=submit]")
                page.click("nav button[data-tab=review]")
                page.wait_for_selector(".review-card .framed .box", timeout=30_000)
                assert "regions: crack at" in page.inner_text(".review-card .regions") or \
                    "regions: pit at" in page.inner_text(".review-card .regions")
                box = page.locator(".review-card .framed .box").first.bounding_box()
                assert box and box["width"] > 2 and box["height"] > 2
                if os.environ.get("DEFECTSCOPE_SCREENSHOT"):  # docs/regions-review.png is made this way
                    page.screenshot(path=os.environ["DEFECTSCOPE_SCREENSHOT"])
                page.click("nav button[data-tab=upload]")
                page.set_input_files("#files", str(upload))
                page.wait_for_selector("#uploads .review-card .framed .box", timeout=30_000)
            finally:
                browser.close()
