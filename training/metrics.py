"""Classification and pass/fail metrics from class probabilities (numpy, and scipy for exact intervals).

Which classes are defects and how scores become outcomes is ``inspection.decision``'s: the figures
here are computed with the decision rule the line runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inspection.card import Thresholds
from inspection.decision import defect_mask, defect_scores, outcomes
from inspection.types import Outcome
from training.bounds import intervals


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def per_class(cm: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    out = {}
    for i, c in enumerate(classes):
        p = tp[i] / predicted[i] if predicted[i] else 0.0
        r = tp[i] / support[i] if support[i] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[c] = {"precision": p, "recall": r, "f1": f1, "support": int(support[i])}
    return out


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum formula (ties count half); None without both classes."""
    pos, neg = int(positive.sum()), int((~positive).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve as sum over thresholds of (recall step) x precision, tied
    scores taken together (scikit-learn's definition, the one KolektorSDD results are published in)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    pos = int(positive.sum())
    if pos == 0 or pos == len(positive):
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each distinct score
    tp = np.cumsum(p)[last]
    precision, recall = tp / (last + 1), tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    thresholds = np.unique(scores)[::-1]
    pos, neg = max(1, int(positive.sum())), max(1, int((~positive).sum()))
    tpr = [(scores[positive] >= t).sum() / pos for t in thresholds]
    fpr = [(scores[~positive] >= t).sum() / neg for t in thresholds]
    return np.r_[0.0, fpr, 1.0], np.r_[0.0, tpr, 1.0]


def pass_fail_outcomes(outcomes: np.ndarray, is_defect: np.ndarray) -> dict[str, Any]:
    """Escape rate (defects passed automatically) and false-reject rate (good parts failed), from the
    outcome of each image (pass, fail, review, or invalid: refused by the quality gate).

    Parts sent to review are neither: a person decides them, and their share is reported. An
    invalid frame is retaken, never passed, so it is no escape and no false reject either.
    """
    outcomes = np.asarray(outcomes, dtype=object)
    is_defect = np.asarray(is_defect, dtype=bool)
    n_def, n_good = int(is_defect.sum()), int((~is_defect).sum())
    passed, failed = outcomes == Outcome.PASS.value, outcomes == Outcome.FAIL.value
    review, invalid = outcomes == Outcome.REVIEW.value, outcomes == Outcome.INVALID.value
    return {
        "defects": n_def,
        "good": n_good,
        "escape_rate": float(passed[is_defect].mean()) if n_def else None,
        "escapes": int(passed[is_defect].sum()),
        "false_reject_rate": float(failed[~is_defect].mean()) if n_good else None,
        "false_rejects": int(failed[~is_defect].sum()),
        "review_rate": float(review.mean()) if len(review) else 0.0,
        "invalid_rate": float(invalid.mean()) if len(invalid) else 0.0,
        "defect_recall": float(1 - passed[is_defect].mean()) if n_def else None,
    }


def pass_fail(scores: np.ndarray, is_defect: np.ndarray, fail: float, review: float | None = None,
              gate: np.ndarray | None = None) -> dict[str, Any]:
    """``pass_fail_outcomes`` at the thresholds (the decision rule's own comparison), plus ROC AUC.
    ``gate``: per image, False where the quality gate refused the frame (its outcome is invalid)."""
    out = outcomes(scores, Thresholds(fail, review))
    if gate is not None:
        out[~np.asarray(gate, dtype=bool)] = Outcome.INVALID.value
    scores, is_defect = np.asarray(scores), np.asarray(is_defect)
    rates = pass_fail_outcomes(out, is_defect)
    return {**rates, "roc_auc": roc_auc(scores, is_defect), "average_precision": average_precision(scores, is_defect),
            "intervals": intervals(rates, len(scores))}


def classification_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    pass_classes: Sequence[str] = (),
    fail: float = 0.5,
    review: float | None = None,
    gate: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class P/R/F1, confusion matrix and, with a pass class, pass/fail rates
    (``gate``: see ``pass_fail``)."""
    preds = probs.argmax(axis=1)
    cm = confusion_matrix(labels, preds, len(classes))
    pc = per_class(cm, classes)
    present = [v["f1"] for v in pc.values() if v["support"]]
    out: dict[str, Any] = {
        "n": len(labels),
        "accuracy": float((preds == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(np.mean(present)) if present else 0.0,
        "per_class": pc,
        "confusion": cm.tolist(),
        "classes": list(classes),
    }
    mask = defect_mask(classes, pass_classes)
    if pass_classes and mask.any():
        out["pass_fail"] = {"fail_threshold": fail, "review_threshold": review,
                            **pass_fail(defect_scores(probs, mask), mask[labels], fail, review, gate)}
    return out
