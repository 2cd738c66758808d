"""After the last epoch: write the bundle, calibrate it on validation through the served model's own
predictor (what the line will compute, quality gate included), evaluate it on the test split."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from datasets.layout import Dataset
from inspection.atomic import write_text_atomic
from inspection.bundle import CARD, load_bundle
from inspection.card import ModelCard, Thresholds
from inspection.predictor import Predictor
from inspection.preprocess import Preprocessor
from training.calibration import FALSE_REJECT_BUDGET, LabelledScores, calibrate, summary
from training.calibration_report import write_calibration_report
from training.config import TrainConfig
from training.data import CachedSplit
from training.data_view import view_of
from training.export import save_bundle
from training.metrics import classification_metrics
from training.monitoring import learn_quality, score_reference
from training.progress import Reporter
from training.result import TrainResult
from training.run_dir import RunDir
from training.scoring import score_samples
from training.synth_defects import KINDS

PARITY_IMAGES = 16  # validation images the ONNX export must reproduce


def _calibrate(config: TrainConfig, pool: LabelledScores, classes: tuple[str, ...], pass_classes: tuple[str, ...],
               rep: Reporter) -> tuple[Thresholds, dict[str, Any] | None]:
    if not pass_classes or len(pass_classes) == len(classes):
        rep.message("[yellow]no pass/fail calibration[/]: the dataset has no pass class (or no defect class), "
                    "so this model types defects only; the fail threshold stays 0.5")
        return Thresholds(), None
    cal = calibrate(pool.scores, pool.is_defect, target_recall=config.target_recall,
                    review_false_reject=config.review_false_reject, review_budget=config.review_budget,
                    fallback=config.no_defects_fallback, source=pool.source, good_only=bool(config.good_only))
    if cal.calibrated:
        rep.message(f"calibrated {summary(cal)}; {cal.support}")
    if cal.note:
        rep.message(f"[yellow]calibration note[/]: {cal.note}")
    return cal.thresholds, cal.to_dict()


def good_only_record(config: TrainConfig, cal: dict[str, Any] | None) -> dict[str, Any]:
    """What the card says about a model that never saw a real defect (shown on /v1/model and the QA page)."""
    return {"synthesized": list(KINDS), "share": config.synthesize,
            "false_reject_budget": config.review_false_reject or FALSE_REJECT_BUDGET,
            "calibrated_on": (cal or {}).get("source"),
            "can_miss": "defects unlike every synthesized kind (scratch, crack, pit, stain, foreign texture, "
                        "misplaced patch), and defects too faint to tell from the part's own variation; "
                        "its recall is unknown until it is evaluated on real defects"}


def finalize(config: TrainConfig, dataset: Dataset, model: nn.Module, parent: ModelCard | None, val: CachedSplit,
             pre: Preprocessor, run: RunDir, rep: Reporter, partial: TrainResult,
             pool: LabelledScores | None = None) -> TrainResult:
    """``pool``: calibrate on these scores (out-of-fold ones) instead of the val split's."""
    from training.evaluate import evaluate

    classes = tuple(dataset.info.classes)
    pass_classes = tuple(c for c in dataset.info.pass_classes if c in classes)
    card = ModelCard(
        name=config.name or dataset.root.name, version="", arch=config.arch, classes=classes,
        pass_classes=pass_classes, preprocess=pre.config,
        quality=learn_quality(dataset, pre.config, rep.message), dataset_fingerprint=dataset.fingerprint(),
        parent_version=parent.version if parent is not None else None,
        extra={"training": {"best_epoch": partial.best_epoch, "epochs_run": partial.epochs_run,
                            "stop_reason": partial.stop_reason, "train_seconds": partial.train_seconds,
                            "seed": config.seed, "weights": config.weights, "init_from": config.init_from,
                            "recipe": config.recipe, "scale": config.scale, "crop": config.crop,
                            "synthesize": config.synthesize, "data_view": view_of(dataset)}},
    )
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}  # native frames may differ in size
    for img in val.images[:PARITY_IMAGES]:
        by_shape.setdefault(img.shape, []).append(pre.normalize(img))
    sample = [np.stack(group) for group in by_shape.values()]
    bundle = save_bundle(run.bundle, model.cpu().eval(), card, sample=sample, export=config.export_onnx)
    threads = torch.get_num_threads()
    scored = score_samples(Predictor(bundle, threads=threads, batch_size=config.eval_batch_size), dataset,
                           dataset.split("val"), threads=threads)
    own_val = pool is None  # an out-of-fold pool gets its report from crossfit.py, with its own images
    if pool is None and pass_classes:
        pool = scored.labelled(classes, pass_classes, "val split")
    thresholds, cal = _calibrate(config, pool, classes, pass_classes, rep)
    vm = classification_metrics(scored.probs, scored.label_indices(classes), classes, pass_classes, thresholds.fail,
                                thresholds.review, gate=scored.gate_ok)
    reference = score_reference(pool.scores, pool.is_defect, thresholds.fail) if pass_classes else None
    metrics = {"val": vm, "calibration": cal, "val_scores": reference}
    if cal is not None:
        metrics["calibration_pool"] = pool.to_dict()  # what 'calibrate --reviewed' adds the line's labels to
    card = bundle.card.with_(thresholds=thresholds, metrics=metrics)
    if config.good_only:
        card = card.with_(extra={**card.extra, "good_only": good_only_record(config, cal)})
    write_text_atomic(run.bundle / CARD, card.to_json())  # the thresholds: weights and export are unchanged
    bundle = load_bundle(run.bundle)
    rep.message(f"bundle {bundle.path} (version {bundle.card.version}); val accuracy {vm['accuracy']:.4f}")
    if cal is not None and cal["calibrated"] and own_val:
        html = write_calibration_report(run.root / "calibration", bundle.card, cal, pool, scored.items, scored.paths,
                                        bundle.card)
        rep.message(f"calibration report {html}")
    test = None
    if dataset.split("test"):
        report = evaluate(bundle.path, dataset, split="test", out=run.eval_test, threads=threads)
        test = report.metrics
        rep.message(f"test accuracy {test['accuracy']:.4f} on {test['n']} images; report {report.html_path}")
    result = replace(partial, val_metrics=vm, test_metrics=test, calibration=cal)
    write_text_atomic(run.result, json.dumps(result.to_dict(), indent=2, default=str))
    return result
