"""Labelled images -> calibrated model bundle: training, evaluation, threshold calibration.

    from training import TrainConfig, train
    result = train(TrainConfig(data="data/sim", out="runs/x"))
    result.bundle_path  # the model bundle, ready for Predictor.from_path

Fine-tuning (retraining) is the same call with ``init_from=<parent bundle>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.calibration import Calibration as Calibration
    from training.calibration import calibrate as calibrate
    from training.config import AugmentConfig as AugmentConfig
    from training.config import TrainConfig as TrainConfig
    from training.evaluate import EvalReport as EvalReport
    from training.evaluate import evaluate as evaluate
    from training.result import TrainResult as TrainResult
    from training.trainer import train as train

_EXPORTS = {
    "AugmentConfig": "training.config", "TrainConfig": "training.config", "TrainResult": "training.result",
    "train": "training.trainer", "evaluate": "training.evaluate", "EvalReport": "training.evaluate",
    "calibrate": "training.calibration", "Calibration": "training.calibration",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: importing training.config must not import torch
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
