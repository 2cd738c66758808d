"""What a run trains, validates and tests on: a fold held out, val carved, or a clear refusal."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from datasets.folds import assign_folds
from datasets.layout import Dataset, DatasetError
from defectscope.cli import app
from tests.training.conftest import make_marks_dataset
from training import TrainConfig, train
from training.data_view import training_dataset
from training.evaluate import evaluate
from training.progress import Reporter


def _no_val(tmp_path) -> Dataset:
    return make_marks_dataset(tmp_path / "d", {"train": {"good": 16, "scratch": 8, "spot": 8},
                                               "test": {"good": 4, "scratch": 2, "spot": 2}})


def test_a_dataset_without_val_is_refused_with_the_command_that_fixes_it(tmp_path) -> None:
    ds = _no_val(tmp_path)
    with pytest.raises(DatasetError, match=r"dataset split .* --val-from-train 0\.15"):
        training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run")))


def test_carve_val_at_training_time_leaves_test_alone_and_says_how(tmp_path) -> None:
    ds = _no_val(tmp_path)
    view = training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), carve_val=0.25))
    assert [s.path for s in view.split("test")] == [s.path for s in ds.split("test")]
    assert len(view.split("val")) == 8 and {s.label for s in view.split("val")} == {"good", "scratch", "spot"}
    assert "25% of train" in view.info.extra["view"]["val"]
    assert Dataset.load(ds.root).split("val") == []  # the dataset on disk is not changed
    again = training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), carve_val=0.25))
    assert again.fingerprint() == view.fingerprint()  # a resumed run sees the same data


def test_folds_need_a_fold_and_the_fold_is_the_test_split(tmp_path) -> None:
    ds = _no_val(tmp_path)
    folded = ds.with_samples(assign_folds(ds.samples, 3))
    folded.save()
    with pytest.raises(DatasetError, match="pass --fold I"):
        training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run")))
    view = training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), fold=2))
    assert {s.path for s in view.split("test")} == {s.path for s in folded.samples if s.fold == "2"}
    assert not {s.path for s in view.split("train") + view.split("val")} & {s.path for s in view.split("test")}
    assert view.info.extra["view"]["fold"] == 2
    with pytest.raises(DatasetError, match="not one of the dataset's folds"):
        training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), fold=5))


@pytest.mark.slow
def test_training_on_a_fold_uses_the_masks_and_evaluate_takes_the_same_fold(tmp_path) -> None:
    ds = make_marks_dataset(tmp_path / "d", {"": {"good": 30, "scratch": 15, "spot": 15}}, masks=True)
    ds.with_samples([replace(s, extra={"part": f"p{k // 2}"}) for k, s in enumerate(ds.samples)]).save()
    res = CliRunner().invoke(app, ["dataset", "split", str(ds.root), "--folds", "3", "--group-by", "part"])
    assert res.exit_code == 0, res.output
    log = io.StringIO()
    result = train(TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), fold=1, input_size=(32, 40), epochs=2,
                               batch_size=16, threads=2, patience=0),
                   progress=False, reporter=Reporter(console=Console(file=log, width=200)))
    assert "adding the mask loss" in log.getvalue()
    card = json.loads((result.bundle_path / "card.json").read_text())
    view = card["extra"]["training"]["data_view"]
    assert view["fold"] == 1 and "grouped by part" in view["val"]
    fold1 = [s for s in Dataset.load(ds.root).samples if s.fold == "1"]
    assert result.test_metrics["n"] == len(fold1)
    report = evaluate(result.bundle_path, ds.root, fold=1)
    assert report.metrics["n"] == len(fold1) and report.metrics["split"] == "fold 1"
    assert report.metrics["accuracy"] == result.test_metrics["accuracy"]
    with pytest.raises(DatasetError, match="trained with fold 1 held out"):
        evaluate(result.bundle_path, ds.root, fold=0)
