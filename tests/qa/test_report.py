"""The QA report: files written, error rows, evaluation view, resume, exit codes, and the HTML
rendered by a real browser (headless Chromium) when one is installed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from defectscope.cli import app
from inspection.explain import Explainer
from inspection.predictor import Predictor
from qa.batch import BatchRunner
from qa.paths import collect_paths
from qa.report import ReportError, ReportWriter, load_truth
from qa.report.assets import EXT, HEATMAP_SIDE, THUMB_SIDE
from qa.report.writer import JOURNAL
from tests.serving.test_ui_browser import _browser_or_skip
from tests.support import encode, png_bomb

HOSTILE = "x</script><img src=x onerror=alert(1)>.png"  # a folder "x<" and a file "script>..."


@pytest.fixture
def lot(tmp_path, rng) -> Path:
    """A lot in class subfolders (the labels), with broken files and a hostile file name."""
    root = tmp_path / "lot"
    for label, n in (("good", 4), ("scratch", 3), ("dent", 2)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 256, size=(37 + i, 53, 3), dtype=np.uint8)
            (root / label / f"{label}{i}.jpg").write_bytes(encode(img, ".jpg"))
    (root / "good" / "x<").mkdir()
    (root / "good" / HOSTILE).write_bytes(encode(rng.integers(0, 256, size=(21, 19, 3), dtype=np.uint8)))
    jpeg = encode(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8), ".jpg")
    (root / "dent" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "dent" / "bomb.png").write_bytes(png_bomb(30000, 30000))
    (root / "scratch" / "empty.jpg").write_bytes(b"")
    return root


def run_report(predictor: Predictor, lot: Path, out: Path, *, resume: bool = False, only: int | None = None):
    paths = collect_paths([lot])
    writer = ReportWriter(out, model=f"{predictor.card.name}@{predictor.card.version}", classes=predictor.card.classes,
                          pass_classes=predictor.card.pass_classes, resume=resume)
    todo = writer.todo(paths)
    runner = BatchRunner(predictor, explainer=Explainer(predictor.bundle))
    for i, res in enumerate(runner.run(todo)):
        if only is not None and i == only:
            writer.close()  # as if the process died here
            return None, todo
        writer.add(res)
    return writer.finish(paths, load_truth(lot)), todo


def test_report_lists_every_file_with_errors_and_evaluation(tiny_bundle, lot, tmp_path):
    predictor = Predictor(tiny_bundle, batch_size=4)
    summary, _ = run_report(predictor, lot, tmp_path / "rep")
    out = tmp_path / "rep"
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(rows) == summary.total == 13
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["verdict"] == "error"}
    assert set(errors) == {"truncated.jpg", "bomb.png", "empty.jpg"} and "truncated" in errors["truncated.jpg"]
    assert all("thumbnail" not in r and "heatmap" not in r for r in rows)  # no inline images anywhere
    judged = [r for r in rows if r["verdict"] != "error"]
    assert all(r["model_version"] == predictor.card.version and len(r["sha256"]) == 64 for r in judged)
    flagged = [r for r in judged if r["verdict"] in ("fail", "review")]
    assert flagged and all(r["heatmap_file"].startswith("heatmaps/") for r in flagged)
    assert all(r["heatmap_file"] is None for r in judged if r["verdict"] == "pass")
    assert all(r["thumbnail_file"] is None and r["heatmap_file"] is None for r in rows if r["verdict"] == "error")
    for r in judged:  # every image a small file of the report folder, at most the bounded size
        for key, side in (("thumbnail_file", THUMB_SIDE), ("heatmap_file", HEATMAP_SIDE)):
            if r[key] is None:
                continue
            data = (out / r[key]).read_bytes()
            assert r[key].endswith(EXT) and len(data) < 4_000
            assert data[:4] + data[8:12] == b"RIFFWEBP" if EXT == ".webp" else data[:2] == b"\xff\xd8"
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img.shape[:2] == (r["height"], r["width"]) and max(img.shape[:2]) <= side  # small frames stay
    assert len({r["thumbnail_file"] for r in judged}) == len(judged)  # never two rows on one file

    with (out / "verdicts.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [t["path"] for t in table] == [r["path"] for r in rows]
    assert {"score_good", "score_scratch", "score_dent", "sha256", "error", "truth"} <= set(table[0])
    assert {t["truth"] for t in table} == {"good", "scratch", "dent"}

    ev = summary.evaluation
    assert ev is not None and ev.labelled == 13
    assert sum(sum(v.values()) for v in ev.confusion.values()) == 13 and ev.confusion["dent"]["error"] == 2
    good_failed = [r["path"] for r in judged if r["truth"] == "good" and r["verdict"] == "fail"]
    assert ev.false_rejects == good_failed
    assert summary.counts["error"] == 3 and set(summary.by_folder) == {"good", "good/x<", "scratch", "dent"}

    html = (out / "report.html").read_text()
    assert "<script>" in html and html.count("</script>") == 2  # the hostile name cannot close a script
    assert "<img src=x onerror" not in html
    assert "base64," not in html and "http://" not in html and "https://" not in html  # nothing inline, nothing remote
    assert "default-src 'none'; img-src 'self' file:;" in html  # the page may load its own files, nothing else
    table = table_rows(html)
    assert len(table) == 13 and any(r["path"].endswith(HOSTILE) for r in table)
    assert [(r["thumbnail_file"], r["heatmap_file"]) for r in table] == [(r["thumbnail_file"], r["heatmap_file"])
                                                                         for r in rows]
    assert "Escapes" in html and "False rejects" in html and "bomb.png" in html


def table_rows(html: str) -> list[dict]:
    """The image table's rows as embedded in report.html: one column list, one array per row."""
    data = json.loads(html.split('id="data">', 1)[1].split("</script>", 1)[0])
    return [dict(zip(data["cols"], row, strict=True)) for row in data["rows"]]


def test_resume_skips_what_the_report_has_and_survives_a_torn_line(tiny_bundle, lot, tmp_path):
    predictor = Predictor(tiny_bundle, batch_size=4)
    out = tmp_path / "rep"
    _, todo = run_report(predictor, lot, out, only=6)
    with (out / JOURNAL).open("a") as fh:
        fh.write('{"path": "half a line')  # the crash tore the last write
    with pytest.raises(ReportError, match="--resume"):
        ReportWriter(out, model="x@1", classes=(), pass_classes=())
    with pytest.raises(ReportError, match="one model"):
        ReportWriter(out, model="other@2", classes=(), pass_classes=(), resume=True)
    journal = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()[:-1]]
    assert len(journal) == 6 and all((out / r["thumbnail_file"]).is_file() for r in journal if r["thumbnail_file"])
    summary, todo2 = run_report(predictor, lot, out, resume=True)
    assert len(todo) == 13 and len(todo2) == 7
    assert summary.total == 13
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in collect_paths([lot])]
    files = [r[k] for r in rows for k in ("thumbnail_file", "heatmap_file") if r[k]]
    assert len(set(files)) == len(files) and all((out / f).is_file() for f in files)
    assert {r["thumbnail_file"] for r in journal if r["thumbnail_file"]} <= set(files)  # resumed rows keep theirs


def test_labels_from_a_csv(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "labels.csv").write_text("path,label\na.png,scratch\n,\n")
    truth = load_truth(tmp_path / "labels.csv")
    assert truth.label_of(tmp_path / "a.png") == "scratch" and truth.label_of(tmp_path / "b.png") is None
    (tmp_path / "bad.csv").write_text("file,class\na.png,scratch\n")
    with pytest.raises(Exception, match="'path' and 'label'"):
        load_truth(tmp_path / "bad.csv")


def test_cli_report_exit_codes_and_resume(tiny_bundle, lot, tmp_path):
    runner = CliRunner()
    out = tmp_path / "rep"
    args = ["inspect", str(lot), "--model", str(tiny_bundle.path), "--out", str(out), "--labels", str(lot),
            "--workers", "2", "--batch-size", "5"]
    res = runner.invoke(app, [*args, "--fail-on", "none"])
    assert res.exit_code == 0, res.output
    assert "13 images" in res.output and "3 error" in res.output and "report.html" in res.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already holds a report" in again.output
    resumed = runner.invoke(app, [*args, "--resume"])  # default --fail-on error: the broken files count
    assert resumed.exit_code == 1 and "13 files already in the report, 0 to go" in resumed.output
    rows = (out / "verdicts.jsonl").read_text().splitlines()
    assert len(rows) == 13
    defects = sum(json.loads(r)["verdict"] == "fail" for r in rows)
    on_defect = runner.invoke(app, [*args, "--resume", "--fail-on", "defect"])
    assert on_defect.exit_code == (1 if defects else 0)
    missing = runner.invoke(app, ["inspect", str(tmp_path / "nowhere"), "--model", str(tiny_bundle.path)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_report_renders_in_a_headless_browser(tiny_bundle, lot, tmp_path):
    """From file://, under its Content-Security-Policy: every row, every image decoded, sorting,
    filtering and the zoom work, and the browser reports no error (a blocked resource would be one)."""
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    run_report(Predictor(tiny_bundle, batch_size=4), lot, tmp_path / "rep")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 3000})  # every row in view: no lazy wait
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto((tmp_path / "rep" / "report.html").as_uri(), wait_until="load")
            info = page.inner_text("#pageinfo")
            badges = page.eval_on_selector_all("#body .badge", "b => b.map(x => x.textContent)")
            page.wait_for_timeout(300)
            images = page.eval_on_selector_all("#body img, .gallery img",
                                               "imgs => imgs.map(i => [i.complete && i.naturalWidth > 0, "
                                               "i.getAttribute('src')])")
            page.click('#rows th[data-key="defect_score"]')  # highest score first
            scores = page.eval_on_selector_all("#body td.n:nth-child(5)", "c => c.map(x => x.textContent)")
            page.select_option("#f", "error")
            filtered = page.inner_text("#pageinfo")
            page.select_option("#f", "all")
            page.click("#body img.heat >> nth=0")
            zoomed = page.eval_on_selector("#zoom", "z => getComputedStyle(z).display")
            shot = tmp_path / "shot.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert info == "13 of 13 images, page 1 of 1" and badges.count("error") == 3  # the script built every row
    judged = 10
    assert len(images) >= judged + 1 and all(ok for ok, _ in images), images  # thumbnails, heatmaps, gallery
    assert all(src.startswith(("thumbs/", "heatmaps/")) for _, src in images)
    numbers = [float(x) for x in scores if x]
    assert len(numbers) == judged and numbers == sorted(numbers, reverse=True)
    assert filtered == "3 of 13 images, page 1 of 1" and zoomed == "flex"
    assert not errors, errors
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
