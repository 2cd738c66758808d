"""KolektorSDD, 3-fold cross-validation grouped by part, every training default (accuracy benchmark).

    .venv/bin/python benchmarks/train_ksdd.py [--src ../shared/datasets/kolektorsdd] [--folds 0,1,2]

What a user runs, through the same functions as the commands:

    defectscope dataset import ../shared/datasets/kolektorsdd/parts.csv --out data/kolektorsdd \\
        --masks ../shared/datasets/kolektorsdd/masks
    defectscope dataset split data/kolektorsdd --folds 3 --group-by part
    defectscope train --data data/kolektorsdd --out runs/bench-ksdd/fold0 --fold 0     (and 1, 2)

Each fold trains on the other two (val carved from them, grouped), calibrates its thresholds on
that val, and is scored on its held-out fold. Printed per fold and pooled over the three held-out
folds (every image scored once, by the model that never saw its part): average precision (the
published figure: 99.9 % for Tabernik et al.'s network trained on a GPU), ROC AUC, and escapes and
false rejects at each fold's calibrated thresholds. Resumes finished folds.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import _train_common  # noqa: F401 - puts the checkout first on sys.path
import numpy as np

from datasets.folds import assign_folds
from datasets.importer import import_dataset
from datasets.layout import Dataset, DatasetInfo
from training import TrainConfig, train
from training.metrics import average_precision, roc_auc

ROOT = Path(__file__).resolve().parents[1]


def prepare(src: Path, data: Path, k: int) -> Dataset:
    if not (data / "manifest.csv").is_file():
        import_dataset(src / "parts.csv", data, masks=src / "masks")
    ds = Dataset.load(data)
    if any(not s.fold for s in ds.samples):
        ds = Dataset(ds.root, DatasetInfo(ds.info.classes, ds.info.pass_classes, {**ds.info.extra, "group_by": "part"}),
                     assign_folds(ds.samples, k, group_by="part"))
        ds.save()
    return ds


def fold_rows(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(defect scores, is defect, verdicts) of a fold's held-out images."""
    with (run / "eval_test" / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return (np.array([float(r["defect_score"]) for r in rows]), np.array([r["label"] != "good" for r in rows]),
            np.array([r["verdict"] for r in rows]))


def figures(scores: np.ndarray, defect: np.ndarray, verdicts: np.ndarray) -> dict:
    return {"images": len(scores), "defects": int(defect.sum()),
            "average_precision": average_precision(scores, defect), "roc_auc": roc_auc(scores, defect),
            "escapes": int((defect & (verdicts == "pass")).sum()),
            "false_rejects": int((~defect & (verdicts == "fail")).sum()),
            "false_reject_rate": float((~defect & (verdicts == "fail")).sum() / max(1, (~defect).sum())),
            "review": int((verdicts == "review").sum()), "invalid": int((verdicts == "invalid").sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "datasets" / "kolektorsdd")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kolektorsdd")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-ksdd")
    p.add_argument("--folds", default="0,1,2")
    p.add_argument("--restart", action="store_true")
    a = p.parse_args()
    ds = prepare(a.src, a.data, 3)
    print({f: sum(s.fold == str(f) for s in ds.samples) for f in range(3)}, dict(ds.class_counts()))
    per_fold, pooled = [], []
    for fold in (int(f) for f in a.folds.split(",")):
        run = a.out / f"fold{fold}"
        t0 = time.perf_counter()
        result = train(TrainConfig(data=str(a.data), out=str(run), fold=fold), progress=False, restart=a.restart)
        rows = fold_rows(run)
        pooled.append(rows)
        row = {"fold": fold, **figures(*rows), "train_minutes": round(result.train_seconds / 60, 2),
               "wall_minutes_this_call": round((time.perf_counter() - t0) / 60, 2),
               "fail_threshold": (result.calibration or {}).get("thresholds", {}).get("fail")}
        per_fold.append(row)
        print(json.dumps(row), flush=True)
    total = figures(*(np.concatenate(parts) for parts in zip(*pooled, strict=True)))
    print(json.dumps({"pooled": total}, indent=2))
    (a.out / "benchmark.json").write_text(json.dumps({"folds": per_fold, "pooled": total}, indent=2))
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f} %"  # noqa: E731
    print(f"\n| KolektorSDD 3-fold, pooled | AP {pct(total['average_precision'])} | {total['escapes']} escapes of "
          f"{total['defects']} | {total['false_rejects']} false rejects ({pct(total['false_reject_rate'])}) | "
          f"{max(r['train_minutes'] for r in per_fold):.1f} min/fold at most |")


if __name__ == "__main__":
    main()
