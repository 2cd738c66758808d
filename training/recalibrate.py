"""Re-choose the thresholds of an existing bundle, without retraining: on labelled data, and on the
line's reviewed verdicts (images QA labelled on the review page or through the label endpoint),
which join the scores the bundle was calibrated on, so thresholds improve as QA works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from datasets.layout import Dataset, DatasetError
from inspection.atomic import atomic_dir
from inspection.bundle import CARD, Bundle, load_bundle
from inspection.card import ModelCard
from inspection.errors import BundleError
from inspection.predictor import Predictor
from training.calibration import Calibration, CalibrationError, LabelledScores, calibrate
from training.evaluate import as_model_labels, select_split
from training.metrics import classification_metrics
from training.scoring import score_samples


def reviewed_verdicts(store: str | Path) -> Dataset:
    """The samples of a sample store that QA labelled from logged verdicts (``via: verdict``)."""
    ds = Dataset.load(store)
    picked = []
    for s in ds.samples:
        if s.source.startswith("intake "):
            try:
                via = json.loads(s.source[len("intake "):]).get("via")
            except ValueError:
                continue
            if via == "verdict":
                picked.append(s)
    return ds.with_samples(picked)


def recalibrate_bundle(
    bundle_path: str | Path,
    data: str | Path | None,
    *,
    out: str | Path,
    split: str = "val",
    reviewed: str | Path | None = None,
    target_recall: float = 0.995,
    review_false_reject: float | None = 0.01,
    review_budget: float | None = None,
    fallback: bool = False,
    backend: str = "auto",
    threads: int | None = None,
) -> tuple[Calibration, ModelCard]:
    """Write a copy of the bundle at ``out`` (may be the same folder) whose card has the new thresholds.

    The scores: ``split`` of ``data`` when given, else the pool the card was calibrated on (the val
    split's or out-of-fold scores); plus, with ``reviewed`` (a sample store), the reviewed verdicts.
    Weights and ONNX file are copied byte for byte, so the version and file hashes stay valid;
    only card.json changes (thresholds, calibration record and pool, metrics on ``split``).
    """
    bundle = load_bundle(bundle_path)
    card = bundle.card
    if not card.pass_classes or not card.defect_classes:
        raise CalibrationError(f"{card.name} has no pass class (or no defect class): there is no pass/fail "
                               "threshold to calibrate")
    predictor = Predictor(bundle, backend=backend, threads=threads, batch_size=64)
    metrics = dict(card.metrics)
    dataset = None
    if data is not None:
        dataset = select_split(Dataset.load(data), split, card.classes)
        scored = score_samples(predictor, dataset, dataset.samples, threads=threads or 2)
        pool = scored.labelled(card.classes, card.pass_classes, f"{split} split")
    elif metrics.get("calibration_pool"):
        scored, pool = None, LabelledScores.from_dict(metrics["calibration_pool"])
    else:
        raise CalibrationError(f"{card.name}@{card.version} keeps no calibration scores (trained before they were "
                               "kept): give --data with a labelled split to calibrate on")
    if reviewed is not None:
        pool = pool + _reviewed_pool(predictor, card, reviewed, threads)
    cal = calibrate(pool.scores, pool.is_defect, target_recall=target_recall, review_false_reject=review_false_reject,
                    review_budget=review_budget, fallback=fallback, source=pool.source,
                    good_only=card.good_only is not None)
    th = cal.thresholds
    if scored is not None:
        metrics[split] = classification_metrics(scored.probs, scored.label_indices(card.classes), card.classes,
                                                card.pass_classes, th.fail, th.review, gate=scored.gate_ok)
    metrics["calibration"] = {**cal.to_dict(), **({"dataset_fingerprint": dataset.fingerprint()} if dataset else {})}
    metrics["calibration_pool"] = pool.to_dict()
    new_card = card.with_(thresholds=th, metrics=metrics)
    _write(bundle, new_card, out)
    return cal, new_card


def _reviewed_pool(predictor: Predictor, card: ModelCard, store: str | Path, threads: int | None) -> LabelledScores:
    ds = reviewed_verdicts(store)
    known = [s for s in as_model_labels(ds.samples, card.classes, ds.info.pass_classes) if s.label in card.classes]
    if not known:
        raise DatasetError(f"{store} holds no reviewed verdicts with this model's classes: label verdicts on the "
                           "review page (or POST /v1/verdicts/ID/label) first")
    scored = score_samples(predictor, ds, known, threads=threads or 2)
    return scored.labelled(card.classes, card.pass_classes, f"{len(scored)} reviewed verdicts")


def _write(bundle: Bundle, card: ModelCard, out: str | Path) -> None:
    src, out = Path(bundle.path).resolve(), Path(out).resolve()
    if out.exists() and out != src:
        raise BundleError(f"{out} exists: choose a new folder for the recalibrated bundle, or use --in-place")
    with atomic_dir(out) as tmp:
        for f in src.iterdir():
            if f.is_file() and f.name != CARD:
                shutil.copy2(f, tmp / f.name)
        (tmp / CARD).write_text(card.to_json())
    load_bundle(out)  # prove the written bundle verifies before reporting success
