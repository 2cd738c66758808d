"""Counts a QA report opens with: outcomes, fail rate, defect classes, subfolders, and with
known labels the evaluation view (confusion matrix, escapes, false rejects)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

OUTCOMES = ("pass", "fail", "review", "invalid", "error")
UNJUDGED = ("error", "invalid")  # no verdict on the part: unreadable file, or refused by the quality gate


@dataclass(frozen=True)
class Evaluation:
    labelled: int
    confusion: dict[str, dict[str, int]]  # truth -> predicted label (or "error") -> count
    escapes: list[str]  # defective by truth, verdict pass: the costly error
    false_rejects: list[str]  # good by truth, verdict fail
    reviewed: int  # labelled images sent to review
    label_accuracy: float | None  # predicted label == truth, over labelled images with a verdict
    defect_recall: float | None  # defective images not passed (fail or review)
    false_reject_rate: float | None  # good images failed


@dataclass(frozen=True)
class Summary:
    total: int
    counts: dict[str, int]
    fail_rate: float | None  # fail / images with a verdict
    by_label: dict[str, dict[str, int]]  # predicted label -> outcome -> count
    by_folder: dict[str, dict[str, int]]  # folder (relative to the common root) -> outcome -> count
    models: list[str]
    root: str
    evaluation: Evaluation | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _folders(paths: Sequence[str]) -> tuple[str, list[str]]:
    parents = [os.path.dirname(os.path.abspath(p)) for p in paths]
    if not parents:
        return "", []
    try:
        root = os.path.commonpath(parents)
    except ValueError:  # different drives on Windows
        return "", parents
    return root, [PurePath(os.path.relpath(p, root)).as_posix() for p in parents]


def _evaluate(rows: Sequence[dict[str, Any]], pass_classes: Sequence[str]) -> Evaluation | None:
    labelled = [r for r in rows if r.get("truth")]
    if not labelled:
        return None
    confusion: dict[str, dict[str, int]] = {}
    for r in labelled:
        pred = r["label"] if r["verdict"] not in UNJUDGED else r["verdict"]
        row = confusion.setdefault(r["truth"], {})
        row[pred] = row.get(pred, 0) + 1
    judged = [r for r in labelled if r["verdict"] not in UNJUDGED]
    bad = [r for r in judged if r["truth"] not in pass_classes]
    good = [r for r in judged if r["truth"] in pass_classes]
    escapes = [r["path"] for r in bad if r["verdict"] == "pass"]
    rejects = [r["path"] for r in good if r["verdict"] == "fail"]
    return Evaluation(
        labelled=len(labelled), confusion=confusion, escapes=escapes, false_rejects=rejects,
        reviewed=sum(r["verdict"] == "review" for r in judged),
        label_accuracy=_ratio(sum(r["label"] == r["truth"] for r in judged), len(judged)),
        defect_recall=_ratio(len(bad) - len(escapes), len(bad)),
        false_reject_rate=_ratio(len(rejects), len(good)),
    )


def summarize(rows: Sequence[dict[str, Any]], pass_classes: Sequence[str] = ("good",)) -> Summary:
    counts = Counter(r["verdict"] for r in rows)
    root, folders = _folders([r["path"] for r in rows])
    by_label: dict[str, Counter[str]] = {}
    by_folder: dict[str, Counter[str]] = {}
    for r, folder in zip(rows, folders, strict=True):
        by_folder.setdefault(folder, Counter())[r["verdict"]] += 1
        if r["verdict"] not in UNJUDGED:
            by_label.setdefault(r["label"], Counter())[r["verdict"]] += 1
    judged = len(rows) - counts["error"] - counts["invalid"]
    models = sorted({f"{r['model_name']}@{r['model_version']}" for r in rows if r.get("model_version")})
    return Summary(
        total=len(rows), counts={k: counts.get(k, 0) for k in OUTCOMES}, fail_rate=_ratio(counts["fail"], judged),
        by_label={k: dict(v) for k, v in sorted(by_label.items())},
        by_folder={k: dict(v) for k, v in sorted(by_folder.items())},
        models=models, root=root, evaluation=_evaluate(rows, pass_classes),
        errors=[(r["path"], r.get("error") or "") for r in rows if r["verdict"] == "error"],
    )
