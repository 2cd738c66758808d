"""Re-choose the thresholds of an existing bundle on labelled data, without retraining."""

from __future__ import annotations

import shutil
from pathlib import Path

from datasets.layout import Dataset
from inspection.atomic import atomic_dir
from inspection.bundle import CARD, load_bundle
from inspection.card import ModelCard
from inspection.errors import BundleError
from inspection.predictor import Predictor
from training.calibration import Calibration, CalibrationError, calibrate
from training.evaluate import select_split
from training.metrics import classification_metrics
from training.scoring import score_samples


def recalibrate_bundle(
    bundle_path: str | Path,
    data: str | Path,
    *,
    out: str | Path,
    split: str = "val",
    target_recall: float = 0.995,
    review_false_reject: float | None = None,
    fallback: bool = False,
    backend: str = "auto",
    threads: int | None = None,
) -> tuple[Calibration, ModelCard]:
    """Write a copy of the bundle at ``out`` (may be the same folder) whose card has the new thresholds.

    Weights and ONNX file are copied byte for byte, so the version and file hashes stay valid;
    only card.json changes (thresholds, calibration record, metrics on ``split``).
    """
    bundle = load_bundle(bundle_path)
    card = bundle.card
    if not card.pass_classes or not card.defect_classes:
        raise CalibrationError(f"{card.name} has no pass class (or no defect class): there is no pass/fail "
                               "threshold to calibrate")
    dataset = select_split(Dataset.load(data), split, card.classes)
    predictor = Predictor(bundle, backend=backend, threads=threads, batch_size=64)
    scored = score_samples(predictor, dataset, dataset.samples, threads=threads or 2)
    cal = calibrate(scored.defect_scores(card.classes, card.pass_classes), scored.is_defect(card.pass_classes),
                    target_recall=target_recall, review_false_reject=review_false_reject, fallback=fallback)
    th = cal.thresholds
    metrics = dict(card.metrics)
    metrics[split] = classification_metrics(scored.probs, scored.label_indices(card.classes), card.classes,
                                            card.pass_classes, th.fail, th.review, gate=scored.gate_ok)
    metrics["calibration"] = {**cal.to_dict(), "split": split, "dataset_fingerprint": dataset.fingerprint()}
    new_card = card.with_(thresholds=th, metrics=metrics)
    src, out = Path(bundle.path).resolve(), Path(out).resolve()
    if out.exists() and out != src:
        raise BundleError(f"{out} exists: choose a new folder for the recalibrated bundle, or use --in-place")
    with atomic_dir(out) as tmp:
        for f in src.iterdir():
            if f.is_file() and f.name != CARD:
                shutil.copy2(f, tmp / f.name)
        (tmp / CARD).write_text(new_card.to_json())
    load_bundle(out)  # prove the written bundle verifies before reporting success
    return cal, new_card
