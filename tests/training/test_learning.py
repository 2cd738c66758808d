"""Real learning tests: marks on textured plates, and the simulated flange line, learnt from scratch on CPU.

The full simulated line (2,000 frames, seven classes) is the benchmark, benchmarks/train_sim.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.bundle import load_bundle
from tests.training.conftest import make_marks_dataset
from training import TrainConfig, train


@pytest.mark.slow
def test_small_dataset_is_learnt_to_high_accuracy(tmp_path: Path) -> None:
    ds = make_marks_dataset(tmp_path / "data", {
        "train": {"good": 100, "scratch": 50, "spot": 50},
        "val": {"good": 30, "scratch": 15, "spot": 15},
        "test": {"good": 30, "scratch": 15, "spot": 15},
    })
    cfg = TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), input_size=(64, 64), epochs=15, batch_size=32,
                      lr=2e-3, patience=0, threads=2)
    result = train(cfg, progress=False)
    assert result.test_metrics is not None
    assert result.test_metrics["accuracy"] >= 0.9, result.test_metrics["confusion"]
    pf = result.test_metrics["pass_fail"]
    assert pf["roc_auc"] >= 0.97 and pf["escape_rate"] <= 0.1
    card = load_bundle(result.bundle_path).card
    assert card.metrics["calibration"]["calibrated"] and card.thresholds.fail <= 0.5


@pytest.mark.slow
def test_the_simulated_flange_line_is_learnt_from_scratch(tmp_path: Path) -> None:
    """The simulator's own frames, the default recipe, fixture and mask loss, at a test-sized scale:
    three classes whose defects are a few pixels wide at the model's input."""
    from datasets.synth import synthesize

    ds = synthesize(tmp_path / "sim", n=480, seed=3, size=(240, 300), defects=("crack", "stain"),
                    defect_fraction=0.5)
    assert ds.info.extra["preprocess"] == {"color": "gray", "fixture": "bright"}
    cfg = TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), long_side=96, epochs=14, batch_size=16,
                      patience=0, threads=2)
    result = train(cfg, progress=False)
    card = load_bundle(result.bundle_path).card
    assert card.arch == "defectnet" and card.preprocess.fixture == "bright" and card.preprocess.color == "gray"
    assert result.test_metrics is not None
    assert result.test_metrics["accuracy"] >= 0.95, result.test_metrics["confusion"]
