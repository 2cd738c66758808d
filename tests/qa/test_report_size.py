"""The report's size: images as small files beside report.html (bounded sides, WebP or JPEG), the
HTML bounded per image, rows journaled only once their files exist, old journals with inline
images adopted on --resume, and a large report that opens in Chromium with its rows."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.types import Outcome, Verdict
from qa.batch import ItemResult
from qa.report import ReportWriter, Truth
from qa.report import assets as report_assets
from qa.report.assets import EXT, HEATMAP_SIDE, THUMB_SIDE, Names
from qa.report.writer import JOURNAL
from tests.qa.test_report import table_rows
from tests.serving.test_ui_browser import _browser_or_skip
from tests.support import encode

CLASSES = ("good", "scratch", "dent")


def picture(h: int, w: int, seed: int) -> np.ndarray:
    """A part-like frame: a lit disc with texture, so the encoder has real detail to keep."""
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(70, 10, (h, w)), 0, 255).astype(np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, 180, -1)
    return cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_GRAY2BGR)


def result(path: Path, i: int, *, thumb: tuple[int, int] = (102, 128), heat: tuple[int, int] | None = (128, 160),
           outcome: Outcome = Outcome.FAIL) -> ItemResult:
    score = 0.9 if outcome is Outcome.FAIL else 0.1
    label = "scratch" if outcome is Outcome.FAIL else "good"
    v = Verdict(frame_id=str(i), source=str(path), outcome=outcome, label=label, confidence=score, defect_score=score,
                scores={"good": 1 - score, "scratch": score, "dent": 0.0}, model_name="m", model_version="1",
                timings_ms={"decode": 1.0})
    return ItemResult(str(path), "ab" * 32, (1024, 1280), v, thumbnail=encode(picture(*thumb, i), ".jpg"),
                      heatmap=encode(picture(*heat, i + 1), ".jpg") if heat else None,
                      heatmap_target=label if heat else None, heatmap_peak=(5, 5) if heat else None)


def writer(out: Path, **kw) -> ReportWriter:
    return ReportWriter(out, model="m@1", classes=CLASSES, pass_classes=("good",), **kw)


def read(out: Path, rel: str) -> tuple[bytes, np.ndarray]:
    data = (out / rel).read_bytes()
    return data, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_large_images_are_shrunk_and_encoded_small(tmp_path):
    out = tmp_path / "rep"
    w = writer(out)
    w.add(result(tmp_path / "big.png", 0, thumb=(600, 800), heat=(960, 1280)))
    w.finish()
    row = json.loads((out / "verdicts.jsonl").read_text())
    assert row["thumbnail_file"] == f"thumbs/big{EXT}" and row["heatmap_file"] == f"heatmaps/big{EXT}"
    for key, side in (("thumbnail_file", THUMB_SIDE), ("heatmap_file", HEATMAP_SIDE)):
        data, img = read(out, row[key])
        assert max(img.shape[:2]) == side and img.shape[1] * 3 == img.shape[0] * 4  # bounded, aspect kept
        assert data[:4] + data[8:12] == b"RIFFWEBP" if EXT == ".webp" else data[:2] == b"\xff\xd8"
    assert len(read(out, row["thumbnail_file"])[0]) < 6_000 and len(read(out, row["heatmap_file"])[0]) < 20_000


@pytest.mark.skipif(EXT != ".webp", reason="this OpenCV writes no WebP")
def test_small_webp_is_kept_as_it_is():
    small = cv2.imencode(".webp", picture(100, 120, 0), [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes()
    assert report_assets.encode(small, THUMB_SIDE, 50) == small  # no second loss, no time spent
    big = cv2.imencode(".webp", picture(300, 400, 0), [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes()
    shrunk = cv2.imdecode(np.frombuffer(report_assets.encode(big, THUMB_SIDE, 50), np.uint8), 1)
    assert shrunk.shape[:2] == (THUMB_SIDE * 3 // 4, THUMB_SIDE)
    assert report_assets.encode(b"not an image", THUMB_SIDE, 50) is None


def _lot(tmp_path, n: int, *, kinds: int, every: int):
    """A report of ``n`` images (``kinds`` distinct frames); all but every ``every``-th fail, with a heatmap."""
    out = tmp_path / "rep"
    w = writer(out)
    for i in range(n):
        w.add(result(tmp_path / "lot" / f"part_{i:05d}.jpg", i % kinds, heat=(128, 160) if i % every else None,
                     outcome=Outcome.FAIL if i % every else Outcome.PASS))
    w.finish()
    return out, n


def test_html_and_images_stay_small_per_image(tmp_path):
    """What made a 5,000-image report 41 MB (every image inline as base64 JPEG) cannot come back:
    the HTML holds a few hundred bytes per image, the images a few kB."""
    out, n = _lot(tmp_path, 600, kinds=50, every=2)
    html = (out / "report.html").read_bytes()
    per_row = 150 + len(str(tmp_path))  # the path itself, and under 150 bytes of verdict and file names
    assert b"base64," not in html and len(html) < 20_000 + per_row * n, len(html) / n
    images = [f for d in ("thumbs", "heatmaps") for f in (out / d).iterdir()]
    assert len(images) == n + n // 2
    assert sum(f.stat().st_size for f in images) < 2_500 * len(images)
    journal = (out / JOURNAL).read_text()
    assert "base64" not in journal and len(journal) < 1_000 * n  # the journal names files, holds no image


def test_asset_names_are_unique_whatever_the_case():
    names = Names()
    got = [names.name(k, p) for k, p in (("1", "a/Part.jpg"), ("2", "b/part.jpg"), ("3", "c/PART.png"),
                                          ("4", "d/x y<z>.png"), ("5", "e/..hidden.png"), ("6", "f/.png"))]
    assert got[:3] == ["Part", "part-2", "PART-3"] and got[3] == "x_y_z_" and all(got)
    assert len({g.casefold() for g in got}) == len(got) and names.name("2", "b/part.jpg") == "part-2"
    resumed = Names()
    resumed.keep("2", {"thumbnail_file": f"thumbs/part-2{EXT}", "heatmap_file": None})
    assert resumed.name("2", "b/part.jpg") == "part-2" and resumed.name("9", "z/part-2.jpg") == "part-2-2"


def test_rows_reach_the_journal_in_order_once_their_files_exist(tmp_path, monkeypatch):
    slow_first = report_assets.store

    def store(out, name, images):
        if name == "p0":
            time.sleep(0.3)  # the first row's images finish last
        files = slow_first(out, name, images)
        assert all((out / f).is_file() for f in files.values() if f)
        return files

    monkeypatch.setattr(report_assets, "store", store)
    out = tmp_path / "rep"
    w = writer(out)
    for i in range(5):
        w.add(result(tmp_path / f"p{i}.jpg", i))
    assert (out / JOURNAL).read_text() == ""  # p0 is still being written: nothing after it may be journaled
    w.close()
    rows = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    assert [Path(r["path"]).name for r in rows] == [f"p{i}.jpg" for i in range(5)]
    assert all((out / r["thumbnail_file"]).is_file() and (out / r["heatmap_file"]).is_file() for r in rows)


def test_a_journal_with_inline_images_is_resumed(tmp_path):
    """A report begun before the images became files: --resume writes them out and compacts the journal."""
    out = tmp_path / "rep"
    out.mkdir()
    old = result(tmp_path / "old.jpg", 3)
    row = {"path": old.path, "verdict": "fail", "label": "scratch", "confidence": 0.9, "defect_score": 0.9,
           "scores": {}, "model_name": "m", "model_version": "1", "sha256": old.sha256, "width": 1280,
           "height": 1024, "error": None, "heatmap_target": "scratch", "heatmap_peak": [5, 5], "regions": [],
           "thumbnail": base64.b64encode(old.thumbnail).decode(), "heatmap": base64.b64encode(old.heatmap).decode()}
    (out / JOURNAL).write_text(json.dumps(row) + "\n")
    w = writer(out, resume=True)
    w.add(result(tmp_path / "new.jpg", 4))
    w.finish(truth=Truth({Path(old.path).resolve(): "scratch"}, "x"))
    journal = (out / JOURNAL).read_text()
    assert "base64" not in journal and '"thumbnail":' not in journal and len(journal.splitlines()) == 2
    table = {Path(r["path"]).name: r for r in table_rows((out / "report.html").read_text())}
    assert table["old.jpg"]["thumbnail_file"] == f"thumbs/old{EXT}" and table["old.jpg"]["truth"] == "scratch"
    assert read(out, table["old.jpg"]["heatmap_file"])[1].shape[:2] == (128, 160)


@pytest.mark.slow
def test_a_large_report_opens_in_chromium_with_its_rows(tmp_path):
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    out, n = _lot(tmp_path, 504, kinds=20, every=3)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto((out / "report.html").as_uri(), wait_until="load")
            first = page.inner_text("#pageinfo"), page.eval_on_selector_all("#body tr", "r => r.length")
            page.wait_for_timeout(300)
            seen = page.eval_on_selector_all("#body img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
            page.click("#next")
            second = page.inner_text("#pageinfo"), page.inner_text("#body tr >> nth=0")
            page.select_option("#f", "pass")
            passed = page.inner_text("#pageinfo")
        finally:
            browser.close()
    assert first == (f"{n} of {n} images, page 1 of 6", 100)
    assert sum(seen) >= 10  # the rows in view show their images; the rest load as they scroll into view
    assert second[0].endswith("page 2 of 6") and "part_00100.jpg" in second[1]
    assert passed == f"{n // 3} of {n} images, page 1 of 2" and not errors, errors
