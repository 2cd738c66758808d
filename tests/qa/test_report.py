"""The QA report: files written, error rows, evaluation view, resume, exit codes, and the HTML
rendered by a real browser (headless Chromium) when one is installed."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from defectscope.cli import app
from inspection.explain import Explainer
from inspection.predictor import Predictor
from qa.batch import BatchRunner
from qa.paths import collect_paths
from qa.report import ReportError, ReportWriter, load_truth
from qa.report.writer import JOURNAL
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
    assert all("thumbnail" not in r and "heatmap" not in r for r in rows)  # images live in the HTML only
    judged = [r for r in rows if r["verdict"] != "error"]
    assert all(r["model_version"] == predictor.card.version and len(r["sha256"]) == 64 for r in judged)
    flagged = [r for r in judged if r["verdict"] in ("fail", "review")]
    assert flagged and all((out / r["heatmap_file"]).is_file() for r in flagged)
    assert all(r["heatmap_file"] is None for r in judged if r["verdict"] == "pass")

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
    data = html.split('id="data">', 1)[1].split("</script>", 1)[0]
    parsed = json.loads(data)
    assert len(parsed["rows"]) == 13 and any(r["path"].endswith(HOSTILE) for r in parsed["rows"])
    assert "Escapes" in html and "False rejects" in html and "bomb.png" in html


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
    summary, todo2 = run_report(predictor, lot, out, resume=True)
    assert len(todo) == 13 and len(todo2) == 7
    assert summary.total == 13
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in collect_paths([lot])]


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
@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH: apt-get install -y chromium to render the report")
def test_report_renders_in_a_headless_browser(tiny_bundle, lot, tmp_path):
    run_report(Predictor(tiny_bundle, batch_size=4), lot, tmp_path / "rep")
    url = (tmp_path / "rep" / "report.html").as_uri()
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "13 of 13 images, page 1 of 1" in dom  # the table script ran and built every row
    assert dom.count('class="badge error"') == 3 and dom.count("data:image/jpeg;base64,") >= 10
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1280,900", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
