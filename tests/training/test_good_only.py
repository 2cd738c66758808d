"""Good parts only: a model trained on good frames against synthesized defects flags real defects it never
saw and passes clean parts; its card, /v1/model and evaluation say what it is; a fine-tune with real
defects keeps synthesizing beside them and calibrates on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from datasets.layout import Dataset, DatasetInfo
from inspection.bundle import load_bundle
from inspection.card import ANOMALY
from inspection.predictor import Predictor
from serving.app import create_app
from serving.config import load_settings
from tests.training.conftest import make_marks_dataset
from training import TrainConfig, train
from training.evaluate import evaluate


@pytest.mark.slow
def test_a_good_only_run_flags_planted_defects_it_never_saw_and_passes_clean_parts(tmp_path: Path) -> None:
    from datasets.synth import synthesize
    from training.scoring import score_samples

    # the simulator's flange at test scale; --good-only leaves train and val's defect frames out, so the
    # test split's cracks and chipped edges were never shown (nothing like a chipped rim is synthesized)
    ds = synthesize(tmp_path / "sim", n=640, seed=5, size=(240, 300), defects=("crack", "chipped_edge"),
                    defect_fraction=0.3)
    cfg = TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), long_side=96, epochs=30, threads=2,
                      good_only=True)
    result = train(cfg, progress=False)
    bundle = load_bundle(result.bundle_path)
    card = bundle.card
    assert card.classes == ("good", ANOMALY) and card.good_only is not None
    assert card.good_only["false_reject_budget"] == 0.01 and "crack" in card.good_only["synthesized"]
    assert card.metrics["calibration"]["mode"] == "good-only" and card.metrics["calibration"]["defects"] == 0

    report = evaluate(result.bundle_path, ds.root, split="test")  # the dataset's own labels: crack, chipped_edge
    pf = report.metrics["pass_fail"]
    assert report.metrics["per_class"][ANOMALY]["support"] == pf["defects"] > 0
    assert pf["roc_auc"] >= 0.85, pf
    assert 1 - pf["escape_rate"] >= 0.8 and pf["false_reject_rate"] <= 0.1, pf  # flagged; clean parts pass
    chips = [s for s in ds.split("test") if s.label == "chipped_edge"]
    flagged = score_samples(Predictor(bundle, threads=2), ds, chips).outcomes != "pass"
    assert flagged.mean() >= 0.6, flagged  # a kind of defect it was never shown, real or synthesized

    settings = load_settings(auth_disabled=True, verdict_db=tmp_path / "v.sqlite")
    with TestClient(create_app(settings, Predictor(load_bundle(result.bundle_path)))) as client:
        shown = client.get("/v1/model").json()
    assert shown["good_only"]["false_reject_budget"] == 0.01 and "can_miss" in shown["good_only"]


def test_a_fine_tune_with_real_defects_keeps_synthesizing_and_calibrates_on_them(tmp_path: Path) -> None:
    tiny = {"epochs": 1, "min_epochs": 0, "batch_size": 8, "threads": 1, "long_side": 32}
    base = make_marks_dataset(tmp_path / "good", {"train": {"good": 16}, "val": {"good": 8}}, seed=1)
    Dataset(base.root, DatasetInfo(("good",)), base.samples).save()  # a new line: no defect class yet
    parent = train(TrainConfig(data=str(base.root), out=str(tmp_path / "p"), **tiny), progress=False)  # auto
    pcard = load_bundle(parent.bundle_path).card
    assert pcard.good_only is not None and pcard.classes == ("good", ANOMALY)

    real = make_marks_dataset(tmp_path / "real", {"train": {"good": 16, "scratch": 8},
                                                  "val": {"good": 8, "scratch": 6}}, seed=2)
    child = train(TrainConfig(data=str(real.root), out=str(tmp_path / "c"), init_from=str(parent.bundle_path), **tiny),
                  progress=False)
    card = load_bundle(child.bundle_path).card
    assert card.classes == ("good", "scratch", "spot", ANOMALY) and card.good_only is None
    assert card.extra["training"]["synthesize"] == 0.5  # inherited: real and synthesized defects together
    assert card.metrics["calibration"]["mode"] == "band" and card.metrics["calibration"]["defects"] == 6


def test_a_split_without_good_images_is_not_good_only(tmp_path: Path) -> None:
    ds = make_marks_dataset(tmp_path / "d", {"train": {"scratch": 6, "spot": 6}, "val": {"good": 2, "scratch": 2}})
    from training.data_view import is_good_only, training_dataset

    view = training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "r")))
    assert not is_good_only(view) and view.info.classes == ds.info.classes
    forced = training_dataset(TrainConfig(data=str(ds.root), out=str(tmp_path / "r"), good_only=True))
    assert is_good_only(forced) and not forced.split("train")
    assert np.all([s.label == "good" for s in forced.split("val")])
