"""``train --folds K``: thresholds chosen on out-of-fold scores, then one final model on all folds.

A validation split holds few defects (8 in KolektorSDD), and "99.5 % recall" on them means "below
the weakest one". Cross-fitting scores every labelled image with a model that did not train on
it: K models, each trained on K-1 folds (with its own val carved from them for early stopping)
and scored on the fold it never saw. The thresholds are chosen on the pooled scores, K times the
defects of one val split. The final model then trains on every fold, for the epochs the fold
models found best, and ships with those thresholds.

The K fold models stay in RUN/fold-I: where the dataset has a test split, their mean score (an
ensemble) is measured on it next to the final model, so the choice is made on figures. The final
model ships by default because it costs one inference per frame, not K.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspection.atomic import write_text_atomic
from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.predictor import Predictor
from training.calibration import LabelledScores
from training.calibration_report import write_calibration_report
from training.config import TrainConfig, TrainConfigError
from training.data_view import training_dataset
from training.metrics import pass_fail
from training.progress import Reporter
from training.result import TrainResult
from training.run_dir import RunDir
from training.scoring import Scored, score_samples
from training.trainer import resolve_config, train

FINAL_SHARE = 0.8  # the fold models train on 80 % of K-1 folds: the final model's data relative to K-1 folds


@dataclass(frozen=True)
class FoldScores:
    fold: int
    card: ModelCard
    scored: Scored  # the held-out fold through the fold model
    result: TrainResult


@dataclass(frozen=True)
class CrossFitResult:
    final: TrainResult
    folds: list[FoldScores]
    pool: LabelledScores
    summary: dict[str, Any]
    report: Path | None


def _eta(seconds: list[float], k: int) -> str:
    per = statistics.mean(seconds)
    left = per * (k - len(seconds)) + per * k / (FINAL_SHARE * (k - 1))
    return f"about {left / 60:.0f} min left ({per / 60:.1f} min per fold model, the final one longer)"


def train_folds(config: TrainConfig, *, progress: bool = True, restart: bool = False,
                reporter: Reporter | None = None) -> CrossFitResult:
    """K fold models, out-of-fold calibration, the final model; resumable like ``train`` (each run
    folder resumes on its own: RUN/fold-0 ... RUN/fold-(K-1), RUN/final)."""
    k = config.folds
    if k is None or config.fold is not None:
        raise ValueError("train_folds needs config.folds set and config.fold unset")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TrainConfigError("train --folds runs in one process (it scores and calibrates between the runs): "
                               "start it without torchrun, or run each fold with --fold I under torchrun")
    rep = reporter or Reporter(True, bars=progress)
    out = config.out_path
    # one recipe for every model, chosen on all the folds: measured on a fold's share of the masks, the
    # chooser could pick another for one of them, and the thresholds would then come from another model
    config, why = resolve_config(config, training_dataset(config))
    rep.message(f"{why} (for all {k} fold models and the final one)")
    threads = config.threads or torch.get_num_threads()
    folds: list[FoldScores] = []
    seconds: list[float] = []
    for i in range(k):
        rep.message(f"[bold]fold {i + 1}/{k}[/]: train on the other folds, score fold {i} with a model that never "
                    "saw it" + (f"; {_eta(seconds, k)}" if seconds else ""))
        t0 = time.perf_counter()
        # a fold model's own thresholds are never used, so a carved val without defects must not stop the run
        cfg = config.with_(fold=i, out=str(out / f"fold-{i}"), no_defects_fallback=True)
        resumed = not restart and RunDir(cfg.out_path).finished() is not None
        result = train(cfg, progress=progress, restart=restart, reporter=rep)
        bundle = load_bundle(result.bundle_path)
        view = training_dataset(cfg)
        scored = score_samples(Predictor(bundle, threads=threads, batch_size=config.eval_batch_size), view,
                               view.split("test"), threads=threads)
        # kept to the report for thumbnails and maps: the float inputs (4x the pixels) go now
        scored = replace(scored, items=[replace(it, inputs=None) for it in scored.items])
        folds.append(FoldScores(i, bundle.card, scored, result))
        # the recorded training time, so a resumed fold (back in seconds) still counts what it costs
        seconds.append(result.train_seconds + time.perf_counter() - t0 if resumed else time.perf_counter() - t0)
    parts = [f.scored.labelled(f.card.classes, f.card.pass_classes, "") for f in folds]
    pool = LabelledScores(np.concatenate([p.scores for p in parts]), np.concatenate([p.is_defect for p in parts]),
                          f"out-of-fold scores of {k} fold models")
    best = [f.result.best_epoch for f in folds]
    epochs = max(1, round(statistics.median(best)))
    rep.message(f"[bold]final model[/]: all {k} folds, {epochs} epochs (the fold models' median best epoch "
                f"{best}), thresholds from {len(pool.scores)} out-of-fold scores; {_eta(seconds, k)}")
    final = train(config.with_(out=str(out / "final"), epochs=epochs, patience=0, monitor="last"),
                  progress=progress, restart=restart, reporter=rep, pool=pool)
    summary = _summary(config, folds, pool, final, threads)
    write_text_atomic(out / "crossfit.json", json.dumps(summary, indent=2, default=str))
    report = None
    card = load_bundle(final.bundle_path).card
    if final.calibration is not None and final.calibration["calibrated"]:
        items = [it for f in folds for it in f.scored.items]
        report = write_calibration_report(out / "calibration", card, final.calibration, pool, items,
                                          [p for f in folds for p in f.scored.paths],
                                          [f.card for f in folds for _ in f.scored.items])
    return CrossFitResult(final, folds, pool, summary, report)


def _summary(config: TrainConfig, folds: list[FoldScores], pool: LabelledScores, final: TrainResult,
             threads: int) -> dict[str, Any]:
    per_fold = [{"fold": f.fold, "bundle": str(f.result.bundle_path), "images": len(f.scored),
                 "defects": int(f.scored.is_defect(f.card.pass_classes).sum()), "best_epoch": f.result.best_epoch,
                 "train_seconds": f.result.train_seconds} for f in folds]
    out: dict[str, Any] = {"folds": per_fold, "calibration": final.calibration, "final": final.to_dict()}
    ensemble = _ensemble_on_test(config, folds, final, threads)
    if ensemble is not None:
        out["ensemble_of_fold_models_on_test"] = ensemble
    return out


def _ensemble_on_test(config: TrainConfig, folds: list[FoldScores], final: TrainResult,
                      threads: int) -> dict[str, Any] | None:
    """The K fold models' mean defect score on the dataset's test split, at the final thresholds."""
    view = training_dataset(config)
    test = view.split("test")
    if not test or final.test_metrics is None or not folds[0].card.pass_classes:
        return None
    scores, labels = [], None
    for f in folds:
        scored = score_samples(Predictor(load_bundle(f.result.bundle_path), threads=threads), view, test,
                               threads=threads)
        part = scored.labelled(f.card.classes, f.card.pass_classes, "test")
        scores.append(part.scores)
        labels = part.is_defect
    th = load_bundle(final.bundle_path).card.thresholds
    mean = np.mean(scores, axis=0)
    return {"models": len(folds), **pass_fail(mean, labels, th.fail, th.review)}
