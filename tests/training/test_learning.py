"""A real learning test: scratches and spots on textured plates, learnt from scratch in a few seconds of CPU.

(The simulator's flange line is the benchmark, benchmarks/train_sim.py: from scratch it needs
minutes, too long for the test suite.)
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
