"""PNG plots (matplotlib, headless): learning curves, confusion matrix, ROC, score histograms."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspection.atomic import write_bytes_atomic


def _figure(width: float = 6.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; set here, not at import, so importers keep theirs
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=100)


def _save(plt, fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def learning_curves(history: Sequence[dict[str, Any]], path: Path) -> None:
    plt, fig, ax = _figure(8, 4)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    ax.plot(epochs, [h["val_loss"] for h in history], label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["train_acc"] for h in history], "--", color="tab:green", label="train acc")
    ax2.plot(epochs, [h["val_acc"] for h in history], "--", color="tab:red", label="val acc")
    ax2.plot(epochs, [h["val_macro_f1"] for h in history], ":", color="tab:purple", label="val macro F1")
    ax2.set_ylim(0, 1.01)
    ax2.set_ylabel("accuracy / F1")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    _save(plt, fig, path)


def confusion(cm: np.ndarray, classes: Sequence[str], path: Path) -> None:
    n = len(classes)
    plt, fig, ax = _figure(1.2 + 0.7 * n, 1.0 + 0.6 * n)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = cm.max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > peak / 2 else "black")
    _save(plt, fig, path)


def roc(fpr: np.ndarray, tpr: np.ndarray, auc: float | None, path: Path) -> None:
    plt, fig, ax = _figure(4.5, 4.5)
    ax.plot(fpr, tpr, label=f"AUC {auc:.4f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], ":", color="gray")
    ax.set_xlabel("false-reject rate (good parts failed)")
    ax.set_ylabel("defect recall")
    ax.legend(loc="lower right")
    _save(plt, fig, path)


def score_histogram(scores: np.ndarray, is_defect: np.ndarray, fail: float, review: float | None, path: Path) -> None:
    plt, fig, ax = _figure(7, 3.5)
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[~is_defect], bins=bins, alpha=0.6, label="good", color="tab:green", log=True)
    ax.hist(scores[is_defect], bins=bins, alpha=0.6, label="defective", color="tab:red", log=True)
    ax.axvline(fail, color="black", label=f"fail {fail:.3g}")
    if review is not None:
        ax.axvline(review, color="orange", linestyle="--", label=f"review {review:.3g}")
    ax.set_xlabel("defect score")
    ax.set_ylabel("images (log)")
    ax.legend(fontsize=8)
    _save(plt, fig, path)
