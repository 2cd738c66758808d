"""End-to-end training on tiny data: resume equals an uninterrupted run, refusals come early, fine-tuning."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

import training.trainer as trainer_mod
from datasets.layout import Dataset
from inspection.bundle import load_bundle
from tests.training.conftest import make_marks_dataset
from training import TrainConfig, train
from training.calibration import CalibrationError
from training.config import TrainConfigError


def tiny_config(data: Dataset, out, **kw) -> TrainConfig:
    base = dict(data=str(data.root), out=str(out), input_size=(32, 40), epochs=3, batch_size=16, threads=2,
                patience=0)
    return TrainConfig(**{**base, **kw})


def weights(run) -> dict:
    return load_file(str(run / "bundle" / "weights.safetensors"))


def test_resume_after_interruption_equals_uninterrupted_run(marks_dataset: Dataset, tmp_path, monkeypatch) -> None:
    full = train(tiny_config(marks_dataset, tmp_path / "a"), progress=False)
    card = load_bundle(full.bundle_path).card
    assert card.classes == ("good", "scratch", "spot") and card.dataset_fingerprint == marks_dataset.fingerprint()
    assert card.metrics["val"]["n"] == 16 and card.extra["onnx_parity_max_abs_diff"] < 1e-4
    for f in ("config.json", "metrics.jsonl", "learning_curves.png", "checkpoints/last.pt", "checkpoints/best.pt",
              "eval_test/report.html", "result.json"):
        assert (tmp_path / "a" / f).is_file(), f

    real_curves = trainer_mod.learning_curves

    def crash_after_epoch_2(history, path):
        real_curves(history, path)
        if len(history) == 2:
            raise KeyboardInterrupt  # as if killed right after the epoch-2 checkpoint

    monkeypatch.setattr(trainer_mod, "learning_curves", crash_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(marks_dataset, tmp_path / "b"), progress=False)
    assert not (tmp_path / "b" / "bundle").exists()
    monkeypatch.setattr(trainer_mod, "learning_curves", real_curves)
    resumed = train(tiny_config(marks_dataset, tmp_path / "b"), progress=False)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 3
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a), "resumed weights differ from the uninterrupted run"
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]

    again = train(tiny_config(marks_dataset, tmp_path / "b"), progress=False)  # finished: nothing retrained
    assert again.bundle_path == resumed.bundle_path
    with pytest.raises(TrainConfigError, match="lr"):
        train(tiny_config(marks_dataset, tmp_path / "b", lr=0.1), progress=False)

    # fine-tune the finished model on a class set with one class renamed away and one new
    tuned = train(tiny_config(marks_dataset, tmp_path / "c", epochs=1, init_from=str(full.bundle_path),
                              input_size=(64, 64)), progress=False)
    tuned_card = load_bundle(tuned.bundle_path).card
    assert tuned_card.parent_version == card.version
    assert tuned_card.preprocess.input_size == (32, 40)  # the parent's preprocessing wins


def test_validation_without_defects_is_refused_before_training(tmp_path) -> None:
    ds = make_marks_dataset(tmp_path / "d", {"train": {"good": 8, "scratch": 4}, "val": {"good": 4},
                                              "test": {"good": 2, "scratch": 2}})
    with pytest.raises(CalibrationError, match="no defective images"):
        train(tiny_config(ds, tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    result = train(tiny_config(ds, tmp_path / "run2", epochs=1, no_defects_fallback=True), progress=False)
    assert result.calibration is not None and result.calibration["calibrated"] is False
    assert load_bundle(result.bundle_path).card.thresholds.fail == 0.5
