"""After the last epoch: calibrate on validation, write the bundle, evaluate it on the test split."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from datasets.layout import Dataset
from inspection.atomic import write_text_atomic
from inspection.bundle import save_bundle
from inspection.card import ModelCard, Thresholds
from inspection.preprocess import Preprocessor
from training.calibration import calibrate
from training.config import TrainConfig
from training.data import CachedSplit
from training.loop import predict
from training.metrics import classification_metrics, defect_scores
from training.monitoring import learn_quality, score_reference
from training.progress import Reporter
from training.result import TrainResult
from training.run_dir import RunDir

PARITY_IMAGES = 16  # validation images the ONNX export must reproduce


def _calibrate(config: TrainConfig, probs: np.ndarray, val: CachedSplit, classes: tuple[str, ...],
               pass_classes: tuple[str, ...], rep: Reporter) -> tuple[Thresholds, dict[str, Any] | None]:
    if not pass_classes or len(pass_classes) == len(classes):
        rep.message("[yellow]no pass/fail calibration[/]: the dataset has no pass class (or no defect class), "
                    "so this model types defects only; the fail threshold stays 0.5")
        return Thresholds(), None
    is_defect = np.array([c not in pass_classes for c in classes])[val.labels]
    cal = calibrate(defect_scores(probs, classes, pass_classes), is_defect, target_recall=config.target_recall,
                    review_false_reject=config.review_false_reject, fallback=config.no_defects_fallback)
    th = cal.thresholds
    if cal.calibrated:
        rep.message(f"calibrated on {cal.defects} defective / {cal.good} good val images: fail >= {th.fail:.4g}"
                    + (f", review >= {th.review:.4g}" if th.review is not None else "")
                    + f"; defect recall {cal.defect_recall:.4f} (target {cal.target_recall}), "
                    f"false-reject rate {cal.false_reject_rate:.4f}")
    if cal.note:
        rep.message(f"[yellow]calibration note[/]: {cal.note}")
    return th, cal.to_dict()


def finalize(config: TrainConfig, dataset: Dataset, model: nn.Module, parent: ModelCard | None, val: CachedSplit,
             pre: Preprocessor, device: torch.device, run: RunDir, rep: Reporter,
             partial: TrainResult) -> TrainResult:
    from training.evaluate import evaluate

    classes = tuple(dataset.info.classes)
    pass_classes = tuple(c for c in dataset.info.pass_classes if c in classes)
    probs = predict(model, val, pre, device, config.eval_batch_size, config.amp)
    thresholds, cal = _calibrate(config, probs, val, classes, pass_classes, rep)
    vm = classification_metrics(probs, val.labels, classes, pass_classes, thresholds.fail, thresholds.review)
    card = ModelCard(
        name=config.name or dataset.root.name, version="", arch=config.arch, classes=classes,
        pass_classes=pass_classes, preprocess=pre.config, thresholds=thresholds,
        metrics={"val": vm, "calibration": cal, "val_scores": score_reference(probs, val.labels, classes,
                                                                              pass_classes, thresholds.fail)},
        quality=learn_quality(dataset, pre.config, rep.message), dataset_fingerprint=dataset.fingerprint(),
        parent_version=parent.version if parent is not None else None,
        extra={"training": {"best_epoch": partial.best_epoch, "epochs_run": partial.epochs_run,
                            "stop_reason": partial.stop_reason, "train_seconds": partial.train_seconds,
                            "seed": config.seed, "weights": config.weights, "init_from": config.init_from}},
    )
    sample = np.stack([pre.normalize(img) for img in val.images[:PARITY_IMAGES]])
    model = model.cpu().eval()
    bundle = save_bundle(run.bundle, model, card, sample=sample, export=config.export_onnx)
    rep.message(f"bundle {bundle.path} (version {bundle.card.version}); val accuracy {vm['accuracy']:.4f}")
    test = None
    if dataset.split("test"):
        report = evaluate(bundle.path, dataset, split="test", out=run.eval_test, threads=torch.get_num_threads())
        test = report.metrics
        rep.message(f"test accuracy {test['accuracy']:.4f} on {test['n']} images; report {report.html_path}")
    result = replace(partial, val_metrics=vm, test_metrics=test, calibration=cal)
    write_text_atomic(run.result, json.dumps(result.to_dict(), indent=2, default=str))
    return result
