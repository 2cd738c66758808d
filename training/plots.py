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


def operating_curve(scores: np.ndarray, is_defect: np.ndarray, fail: float, review: float | None, path: Path) -> None:
    """Escape, automatic false-reject and review rate over the threshold (logit axis: scores crowd
    near 0 and 1), with the chosen review and fail thresholds marked."""
    from training.operating import rates_over

    plt, fig, ax = _figure(7, 4)
    eps = 1e-6
    scores = np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps)
    logit = np.log(scores / (1 - scores))
    marks = [np.log(t / (1 - t)) for t in (fail, review) if t is not None and eps < t < 1 - eps]
    lo, hi = min(logit.min(), *marks) - 0.5, max(logit.max(), *marks) + 0.5  # the scores' range, a margin
    grid = 1 / (1 + np.exp(-np.linspace(lo, hi, 400)))
    grid, esc, fr, rev = rates_over(scores, is_defect, fail, grid)
    if np.asarray(is_defect, dtype=bool).any():  # without defects (good-only) the escape rate is unknown, not 0
        ax.plot(grid, esc, color="tab:red", label="escape rate (defects passed)")
    ax.plot(grid, fr, color="black", label="false-reject rate (good failed)")
    ax.plot(grid, rev, color="tab:orange", linestyle="--", label=f"review rate (fail at {fail:.3g})")
    for t, name, colour in ((review, "review", "tab:orange"), (fail, "fail", "black")):
        if t is not None:
            tt = float(np.clip(t, eps, 1 - eps))
            ax.axvline(tt, color=colour, linewidth=0.8, alpha=0.6)
            _, e, f, r = rates_over(scores, is_defect, fail, np.array([tt]))
            # what each threshold is chosen for: review by the escapes (and costs the review rate), fail by
            # the automatic false rejects
            ys = ([e[0], r[0]] if np.asarray(is_defect).any() else [r[0]]) if name == "review" else [f[0]]
            ax.plot([tt] * len(ys), ys, "o", color=colour)
            ax.annotate(f"{name} {t:.3g}", (tt, max(ys)), textcoords="offset points", xytext=(4, 6),
                        fontsize=8, color=colour)
    ax.set_xscale("logit")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_yscale("symlog", linthresh=0.01)  # the rates a line runs at (0-5 %) stay readable next to 100 %
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1])
    ax.set_yticklabels(["0", "0.5%", "1%", "2%", "5%", "10%", "20%", "50%", "100%"])
    ax.set_xlabel("threshold on the defect score")
    ax.set_ylabel("share of parts")
    ax.legend(fontsize=8, loc="center right")
    _save(plt, fig, path)
