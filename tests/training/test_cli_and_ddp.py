"""The train / evaluate / calibrate commands end to end, killing and resuming, and DDP with two gloo processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datasets.layout import Dataset
from defectscope.cli import app
from inspection.bundle import load_bundle

BIN = Path(sys.executable).parent
TINY = ["--input-size", "32x40", "--batch-size", "16", "--patience", "0", "--no-progress"]


@pytest.fixture(scope="module")
def trained(marks_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    res = CliRunner().invoke(app, ["train", "--data", str(marks_dataset.root), "--out", str(run), "--epochs", "2",
                                   *TINY])
    assert res.exit_code == 0, res.output
    assert "bundle" in res.output and "test accuracy" in res.output
    return run / "bundle"


def test_evaluate_writes_metrics_plots_and_html(trained: Path, marks_dataset: Dataset, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--model", str(trained), "--data", str(marks_dataset.root),
                                   "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "escape rate" in res.output and "confusion matrix" in res.output and "95% exact intervals" in res.output
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["n"] == 16 and len(metrics["confusion"]) == 3
    for f in ("confusion.png", "roc.png", "scores.png", "operating.png", "predictions.csv", "report.html"):
        assert (tmp_path / "rep" / f).stat().st_size > 0, f
    html = (tmp_path / "rep" / "report.html").read_text()
    wrong = metrics["n"] - round(metrics["accuracy"] * metrics["n"])
    assert html.count('<div class="card">') >= wrong  # every misclassified image has a thumbnail
    assert "Highest-scoring good parts" in html and "95% CI" in html  # the operating points and hardest cases


def test_calibrate_writes_a_verified_copy(trained: Path, marks_dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "recal"
    res = CliRunner().invoke(app, ["calibrate", "--model", str(trained), "--data", str(marks_dataset.root),
                                   "--out", str(out), "--target-recall", "0.9", "--review-false-reject", "0.1"])
    assert res.exit_code == 0, res.output
    card = load_bundle(out).card
    assert card.version == load_bundle(trained).card.version  # same weights
    assert card.metrics["calibration"]["target_recall"] == 0.9
    res = CliRunner().invoke(app, ["calibrate", "--model", str(trained), "--data", str(marks_dataset.root)])
    assert res.exit_code == 2 and "--out" in res.output


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress"])
    assert res.exit_code == 2 and "manifest.csv" in res.output
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                                   "--input-size", "axb"])
    assert res.exit_code == 2 and "HEIGHTxWIDTH" in res.output


@pytest.mark.slow
def test_killed_mid_run_then_same_command_resumes_to_a_bundle(marks_dataset: Dataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [str(BIN / "defectscope"), "train", "--data", str(marks_dataset.root), "--out", str(run),
           "--epochs", "6", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind, as a power cut or OOM kill
    proc.wait()
    assert not (run / "bundle").exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert load_bundle(run / "bundle").card.extra["training"]["epochs_run"] == 6
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_ddp_with_two_gloo_processes(marks_dataset: Dataset, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "--no-python", str(BIN / "defectscope"),
           "train", "--data", str(marks_dataset.root), "--out", str(run), "--epochs", "2", *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    card = load_bundle(run / "bundle").card
    assert card.extra["training"]["epochs_run"] == 2
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written once, by rank 0
    # each rank saw half of every epoch: 48 training images -> 24 per rank -> one step of 16 (drop_last)
    assert done.stderr.count("epoch   1 ") == 1
