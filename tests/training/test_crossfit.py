"""``train --folds K``: every labelled image scored by a model that never saw it, thresholds on the pooled
scores, a final model on all folds, and the calibration report; resumable like one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datasets.layout import Dataset, DatasetError
from defectscope.cli import app
from inspection.bundle import load_bundle
from training.calibration import LabelledScores
from training.config import TrainConfig
from training.data_view import training_dataset, with_folds

TINY = ["--epochs", "2", "--input-size", "32x40", "--batch-size", "16", "--patience", "0", "--no-progress"]


@pytest.fixture(scope="module")
def crossfit_run(marks_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("crossfit") / "run"
    res = CliRunner().invoke(app, ["train", "--data", str(marks_dataset.root), "--out", str(run), "--folds", "3",
                                   *TINY])
    assert res.exit_code == 0, res.output
    return run, res.output


def test_every_image_is_scored_out_of_fold_once(marks_dataset: Dataset) -> None:
    cfg = TrainConfig(data=str(marks_dataset.root), out="unused", folds=3)
    pool = {s.path for s in marks_dataset.samples if s.split != "test"}
    held_out = []
    for i in range(3):
        view = training_dataset(cfg.with_(fold=i))
        test = {s.path for s in view.split("test")}
        seen = {s.path for s in view.split("train")} | {s.path for s in view.split("val")}
        assert not test & seen  # the fold model never trains (or early-stops) on what it scores
        held_out.append(test)
    assert set().union(*held_out) == pool and sum(map(len, held_out)) == len(pool)
    final = training_dataset(cfg)  # the final model: every fold to train on, the dataset's test split kept
    assert {s.path for s in final.split("train")} == pool
    assert {s.path for s in final.split("test")} == {s.path for s in marks_dataset.split("test")}
    assert {s.path for s in final.split("val")} <= pool  # in-sample copies: progress only


def test_final_bundle_is_calibrated_on_the_pooled_out_of_fold_scores(crossfit_run: tuple[Path, str],
                                                                     marks_dataset: Dataset) -> None:
    run, output = crossfit_run
    assert "fold 1/3" in output and "fold 3/3" in output and "min left" in output and "final model" in output
    card = load_bundle(run / "final" / "bundle").card
    cal = card.metrics["calibration"]
    n_pool = sum(s.split != "test" for s in marks_dataset.samples)
    assert cal["source"] == "out-of-fold scores of 3 fold models"
    assert cal["defects"] + cal["good"] == n_pool
    pool = LabelledScores.from_dict(card.metrics["calibration_pool"])
    assert len(pool.scores) == n_pool
    assert card.thresholds.fail == cal["thresholds"]["fail"]
    assert card.extra["training"]["data_view"]["train"] == "all folds"
    for i in range(3):
        fold_card = load_bundle(run / f"fold-{i}" / "bundle").card
        assert fold_card.extra["training"]["data_view"]["fold"] == i
        # one recipe, chosen on all folds: the thresholds come from models like the one that ships
        assert (fold_card.arch, fold_card.preprocess.input_size) == (card.arch, card.preprocess.input_size)
    assert "fold models as an ensemble on test" in output
    summary = json.loads((run / "crossfit.json").read_text())
    assert len(summary["folds"]) == 3 and sum(f["images"] for f in summary["folds"]) == n_pool
    assert summary["ensemble_of_fold_models_on_test"]["models"] == 3  # measured next to the final model
    html = (run / "calibration" / "report.html").read_text()
    assert "operating.png" in html and "Lowest-scoring defects" in html and "95% CI" in html
    assert (run / "calibration" / "operating.png").stat().st_size > 1000
    assert len(list((run / "calibration" / "hardest").glob("*.jpg"))) >= 2


def test_rerun_resumes_the_finished_runs(crossfit_run: tuple[Path, str], marks_dataset: Dataset) -> None:
    run, _ = crossfit_run
    res = CliRunner().invoke(app, ["train", "--data", str(marks_dataset.root), "--out", str(run), "--folds", "3",
                                   *TINY])
    assert res.exit_code == 0, res.output
    assert res.output.count("already holds this finished run") == 4 and "epoch   1" not in res.output


def test_folds_and_fold_together_or_a_mismatched_count_are_refused(marks_dataset: Dataset, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "--data", str(marks_dataset.root), "--out", str(tmp_path / "r"),
                                   "--folds", "3", "--fold", "1", *TINY])
    assert res.exit_code == 2 and "not both" in res.output
    three = with_folds(marks_dataset, 3)
    with pytest.raises(DatasetError, match="divided into 3 folds, not 5"):
        with_folds(three, 5)
