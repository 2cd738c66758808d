"""``evaluate(bundle, dataset, split)``: metrics of a bundle as it is served, plus plots and an HTML report.

Images go through the served model's own predictor (decode, quality gate, preprocessing and the
bundle's inference backend, ONNX Runtime by default), so the figures describe what the line will
do: a frame the gate refuses counts as invalid (retaken, never passed), as it would there.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from datasets.folds import fold_view
from datasets.layout import Dataset, DatasetError, Sample
from inspection.atomic import write_bytes_atomic, write_text_atomic
from inspection.bundle import Bundle, load_bundle
from inspection.card import ANOMALY, ModelCard
from inspection.predictor import Predictor
from training import plots
from training.data_view import as_anomaly
from training.metrics import classification_metrics, roc_curve
from training.operating import hardest_cases, thumbnail
from training.report_html import render_report
from training.scoring import Scored, score_samples

MAX_THUMBNAILS = 60


@dataclass(frozen=True)
class EvalReport:
    bundle_path: Path
    split: str
    metrics: dict[str, Any]
    out_dir: Path | None = None
    html_path: Path | None = None
    skipped: list[str] = field(default_factory=list)


def select_split(dataset: Dataset, split: str, classes: tuple[str, ...]) -> Dataset:
    """The split's images (``all``: every image), labelled as the model knows them: to a model with the
    anomaly class (it learnt from synthesized defects) a defect of another class is an anomaly."""
    samples = dataset.samples if split == "all" else dataset.split(split)
    if not samples:
        have = sorted({s.split or "(unassigned)" for s in dataset.samples})
        raise DatasetError(f"{dataset.root} has no images in split {split!r} (it has: {', '.join(have)})")
    samples = as_model_labels(samples, classes, dataset.info.pass_classes)
    unknown = sorted({s.label for s in samples} - set(classes))
    if unknown:
        raise DatasetError(f"labels {unknown} are not classes of this model ({', '.join(classes)}): "
                           "evaluate on a dataset with the model's classes, or retrain with them")
    return dataset.with_samples([replace(s, split="all") if split == "all" else s for s in samples])


def as_model_labels(samples: list[Sample], classes: tuple[str, ...], pass_classes: tuple[str, ...]) -> list[Sample]:
    """To a model with the anomaly class, a defect of a class it does not know is an anomaly."""
    if ANOMALY not in classes:
        return samples
    return [as_anomaly(s) if s.label not in classes and s.label not in pass_classes else s for s in samples]


def evaluate(
    model: str | Path | Bundle,
    data: str | Path | Dataset,
    *,
    split: str = "test",
    fold: int | None = None,
    out: str | Path | None = None,
    backend: str = "auto",
    threads: int | None = None,
    batch_size: int = 64,
) -> EvalReport:
    """Score ``split`` ("train", "val", "test" or "all") with the bundle's thresholds; write a report to ``out``.

    With ``fold``, score that cross-validation fold (the test split of ``train --fold``); a model
    trained with another fold held out is refused, since it has seen these images.
    """
    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    card = bundle.card
    dataset = data if isinstance(data, Dataset) else Dataset.load(data)
    if fold is not None:
        dataset, split = _held_out_fold(dataset, fold, card), "test"
    dataset = select_split(dataset, split, card.classes)
    predictor = Predictor(bundle, backend=backend, threads=threads, batch_size=batch_size)
    scored = score_samples(predictor, dataset, dataset.samples, threads=threads or 2)
    if len(scored) == 0:
        raise DatasetError(f"none of the {split} images could be decoded: {scored.skipped[:3]}")
    th = card.thresholds
    metrics = classification_metrics(scored.probs, scored.label_indices(card.classes), card.classes,
                                     card.pass_classes, th.fail, th.review, gate=scored.gate_ok)
    metrics.update(model=f"{card.name}@{card.version}", split=split if fold is None else f"fold {fold}",
                   skipped=len(scored.skipped))
    if out is None:
        return EvalReport(bundle.path, split, metrics, skipped=scored.skipped)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html = _write_report(out, bundle, scored, metrics, str(dataset.root))
    return EvalReport(bundle.path, split, metrics, out, html, scored.skipped)


def _held_out_fold(dataset: Dataset, fold: int, card: ModelCard) -> Dataset:
    trained = ((card.extra.get("training") or {}).get("data_view") or {}).get("fold")
    if trained is not None and trained != fold:
        raise DatasetError(f"{card.name}@{card.version} was trained with fold {trained} held out, so fold {fold} "
                           f"is part of its training data: evaluate it with --fold {trained}")
    return fold_view(dataset, fold)


def _write_report(out: Path, bundle: Bundle, scored: Scored, metrics: dict[str, Any], data_root: str) -> Path:
    card = bundle.card
    probs, labels = scored.probs, scored.label_indices(card.classes)
    preds = probs.argmax(1)
    scores = scored.defect_scores(card.classes, card.pass_classes)
    is_defect = scored.is_defect(card.pass_classes)
    outcomes = scored.outcomes
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["path", "label", "predicted", "verdict", "gate", "confidence", "defect_score", *card.classes])
    for i, (path, item) in enumerate(zip(scored.paths, scored.items, strict=True)):
        gate = "" if item.quality is None or item.quality.ok else item.quality.code  # why the line would retake it
        writer.writerow([path, card.classes[labels[i]], card.classes[preds[i]], outcomes[i], gate,
                         f"{probs[i, preds[i]]:.5f}", f"{scores[i]:.5f}", *(f"{p:.5f}" for p in probs[i])])
    write_text_atomic(out / "predictions.csv", rows.getvalue())
    images, cases = {"confusion": "confusion.png"}, None
    plots.confusion(np.asarray(metrics["confusion"]), card.classes, out / images["confusion"])
    pf = metrics.get("pass_fail")
    if pf is not None:
        fpr, tpr = roc_curve(scores, is_defect)
        plots.roc(fpr, tpr, pf["roc_auc"], out / "roc.png")
        plots.score_histogram(scores, is_defect, card.thresholds.fail, card.thresholds.review, out / "scores.png")
        plots.operating_curve(scores, is_defect, card.thresholds.fail, card.thresholds.review, out / "operating.png")
        images.update(roc="roc.png", scores="scores.png", operating="operating.png")
        cases = hardest_cases(out, scored.items, scored.paths, scores, is_defect, card)
    # wrong class, or the wrong pass/fail side: an escape or a false reject matters even when typed right
    escapes = is_defect & (outcomes == "pass")
    wrong_side = (escapes | (~is_defect & (outcomes == "fail"))) if pf is not None else np.zeros_like(is_defect)
    bad = np.flatnonzero((preds != labels) | wrong_side)
    total_wrong = len(bad)
    bad = bad[np.argsort(-probs[bad, preds[bad]])][:MAX_THUMBNAILS]  # confident mistakes first
    (out / "thumbs").mkdir(exist_ok=True)
    mistakes = []
    for k, i in enumerate(bad):
        name = f"thumbs/{k:03d}.jpg"
        write_bytes_atomic(out / name, thumbnail(scored.items[i], card))
        mistakes.append({"thumb": name, "path": scored.paths[i], "label": card.classes[labels[i]],
                         "predicted": card.classes[preds[i]], "confidence": float(probs[i, preds[i]]),
                         "defect_score": float(scores[i]), "escape": bool(escapes[i] and pf is not None)})
    html_path = out / "report.html"
    write_text_atomic(html_path, render_report(card, metrics, images, mistakes, data_root, total_wrong=total_wrong,
                                                   cases=cases))
    return html_path
