"""A model from good parts only (``train --good-only``), scored on real defects it never saw (benchmark).

    .venv/bin/python benchmarks/good_only.py --set ksdd     # KolektorSDD, 3 folds grouped by part
    .venv/bin/python benchmarks/good_only.py --set sim      # the simulated line (train_sim.py's 2,000 frames)

Every training default besides ``good_only``. KolektorSDD: each fold's model trains on the good
images of the other two folds (val carved from them, good only), and is scored on every image of
its held-out fold; pooled over the folds, every image is scored once by a model that never saw its
part. The simulated line: trained on the good frames of train (val: the good frames of val), scored
on the test split's good frames and defects of all six types.

Reported: ROC AUC and average precision; at the card's thresholds (fail at a 1 % false-reject
budget on good val images, review band below) escapes, false rejects and reviews; and the recall
at a 1 % false-reject budget measured on the test's own good parts (the curve's point), per
defect type where the data has types.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import _train_common  # noqa: F401 - puts the checkout first on sys.path
import numpy as np

from datasets.layout import Dataset
from training import TrainConfig, train
from training.bounds import rate
from training.metrics import average_precision, roc_auc

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 0.01


def rows_of(run: Path, given: dict[str, str]) -> list[dict]:
    """The held-out images' predictions with their labels as the dataset gives them."""
    with (run / "eval_test" / "predictions.csv").open() as fh:
        return [{"type": given[r["path"]], "score": float(r["defect_score"]), "verdict": r["verdict"]}
                for r in csv.DictReader(fh)]


def at_budget(good: np.ndarray, budget: float = BUDGET) -> float:
    """The lowest threshold failing at most ``budget`` of these good parts."""
    allowed = math.floor(budget * len(good) + 1e-9)
    return float(np.sort(good)[::-1][allowed]) + 1e-9 if allowed < len(good) else 0.0


def figures(rows: list[dict], pass_classes: tuple[str, ...]) -> dict:
    scores = np.array([r["score"] for r in rows])
    defect = np.array([r["type"] not in pass_classes for r in rows])
    verdicts = np.array([r["verdict"] for r in rows])
    t = at_budget(scores[~defect])
    caught = int((scores[defect] >= t).sum())
    out = {"images": len(rows), "defects": int(defect.sum()), "roc_auc": roc_auc(scores, defect),
           "average_precision": average_precision(scores, defect),
           "at_card_thresholds": {"escapes": int((defect & (verdicts == "pass")).sum()),
                                  "false_rejects": int((~defect & (verdicts == "fail")).sum()),
                                  "review": int((verdicts == "review").sum()),
                                  "invalid": int((verdicts == "invalid").sum())},
           f"recall_at_{BUDGET:.0%}_false_reject": rate(caught, int(defect.sum()))}
    types = sorted({r["type"] for r in rows} - set(pass_classes))
    if len(types) > 1:
        good = ~defect
        out["per_type"] = {}
        for k in types:
            is_k = np.array([r["type"] == k for r in rows])
            sel = good | is_k
            out["per_type"][k] = {"n": int(is_k.sum()), "roc_auc": roc_auc(scores[sel], is_k[sel]),
                                  "recall_at_budget": float((scores[is_k] >= t).mean())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=("ksdd", "sim"), required=True)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--folds", default="0,1,2", help="KolektorSDD: which held-out folds")
    p.add_argument("--epochs", type=int, default=None, help="override the default (for a quick look only)")
    p.add_argument("--restart", action="store_true")
    a = p.parse_args()
    out = a.out or ROOT / "runs" / f"good-only-{a.set}"
    extra = {} if a.epochs is None else {"epochs": a.epochs}
    if a.set == "ksdd":
        import train_ksdd

        data = ROOT / "data" / "kolektorsdd"
        ds = train_ksdd.prepare(ROOT.parent / "shared" / "datasets" / "kolektorsdd", data, 3)
        runs = [(out / f"fold{f}", TrainConfig(data=str(data), out=str(out / f"fold{f}"), fold=int(f), good_only=True,
                                               **extra)) for f in a.folds.split(",")]
    else:
        data = ROOT / "data" / "bench-sim"
        if not (data / "manifest.csv").is_file():
            from datasets.synth import synthesize

            synthesize(data, n=2000, seed=0)
        ds = Dataset.load(data)
        runs = [(out, TrainConfig(data=str(data), out=str(out), good_only=True, **extra))]
    given = {s.path: s.label for s in ds.samples}
    pass_classes = tuple(ds.info.pass_classes)
    report, pooled = {"runs": []}, []
    for run, config in runs:
        result = train(config, progress=False, restart=a.restart)
        rows = rows_of(run, given)
        pooled += rows
        row = {"run": str(run), **figures(rows, pass_classes), "train_minutes": round(result.train_seconds / 60, 2),
               "epochs": result.epochs_run, "thresholds": (result.calibration or {}).get("thresholds")}
        report["runs"].append(row)
        print(json.dumps(row), flush=True)
    if len(runs) > 1:
        report["pooled"] = figures(pooled, pass_classes)
        print(json.dumps({"pooled": report["pooled"]}, indent=2))
    (out / "benchmark.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
