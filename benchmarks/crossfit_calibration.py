"""Thresholds from one val split vs from out-of-fold scores, on a held-out test split (benchmark, not a test).

    .venv/bin/python benchmarks/crossfit_calibration.py --set ksdd [--folds 3]
    .venv/bin/python benchmarks/crossfit_calibration.py --set ksdd --every-fold   # after train_ksdd.py
    .venv/bin/python benchmarks/crossfit_calibration.py --set elpv --folds 5     # pip install elpv-dataset
    .venv/bin/python benchmarks/crossfit_calibration.py --set sim --folds 3

Every training default. Three operating points, each measured on the same test split that no
model (and no calibration) saw, with exact 95 % intervals:

- ``single, no band``: today's single-split calibration (one threshold below the weakest val defect);
- ``single, band``: the new default (review band, <= 1 % good auto-failed) on that same val split;
- ``cross-fitted``: ``defectscope train --folds K`` (thresholds on K models' out-of-fold scores, final
  model on all folds), and next to it the K fold models as an ensemble at the same thresholds.

KolektorSDD: the outer test split is fold 0 of the 3 part-grouped folds of ``train_ksdd.py``; its
single-split model is that benchmark's fold-0 model (the same defaults), trained here if missing.
ELPV: the 60/20/20 split of ``train_elpv.py``. sim: ``train_sim.py``'s 2,000 frames (70/15/15).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import _train_common  # noqa: F401 - puts the checkout first on sys.path
import numpy as np

from datasets.layout import Dataset, DatasetInfo
from inspection.bundle import load_bundle
from inspection.decision import outcomes
from inspection.predictor import Predictor
from training import TrainConfig, train
from training.bounds import intervals
from training.calibration import calibrate
from training.crossfit import train_folds
from training.data_view import training_dataset
from training.metrics import pass_fail, pass_fail_outcomes
from training.scoring import score_samples

ROOT = Path(__file__).resolve().parents[1]


def ksdd_outer(data: Path, out: Path) -> Path:
    """KolektorSDD with fold 0 as the test split and folds 1-2 as training data (no folds: assigned anew)."""
    import train_ksdd

    ds = train_ksdd.prepare(ROOT.parent / "shared" / "datasets" / "kolektorsdd", data, 3)
    if not (out / "manifest.csv").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for sub in ("images", "masks"):
            if (data / sub).exists() and not (out / sub).exists():
                os.symlink((data / sub).resolve(), out / sub)
        samples = [replace(s, split="test" if s.fold == "0" else "train", fold="") for s in ds.samples]
        Dataset(out, DatasetInfo(ds.info.classes, ds.info.pass_classes, ds.info.extra), samples).save()
    return out


def prepared(name: str) -> tuple[Path, TrainConfig | None]:
    """(dataset with train / test (and val), the single-split config when it is not plain defaults)."""
    if name == "ksdd":
        single = TrainConfig(data=str(ROOT / "data" / "kolektorsdd"), out=str(ROOT / "runs" / "bench-ksdd" / "fold0"),
                             fold=0, review_false_reject=None)  # as that benchmark ran it
        return ksdd_outer(ROOT / "data" / "kolektorsdd", ROOT / "data" / "kolektorsdd-outer0"), single
    if name == "elpv":
        import train_elpv

        return train_elpv.prepare(ROOT / "data" / "elpv").root, None
    if name == "sim":
        data = ROOT / "data" / "bench-sim"  # train_sim.py's frames
        if not (data / "manifest.csv").is_file():
            from datasets.synth import synthesize

            synthesize(data, n=2000, seed=0)
        return data, None
    raise SystemExit(f"unknown set {name!r}")


def scores_of(bundle_path: Path, dataset: Dataset, split: str) -> tuple:
    bundle = load_bundle(bundle_path)
    card = bundle.card
    scored = score_samples(Predictor(bundle, threads=2), dataset, dataset.split(split), threads=2)
    return scored.defect_scores(card.classes, card.pass_classes), scored.is_defect(card.pass_classes)


def point(scores, is_defect, th_fail: float, th_review: float | None) -> dict:
    pf = pass_fail(scores, is_defect, th_fail, th_review)
    return {k: pf[k] for k in ("defects", "good", "escapes", "false_rejects", "review_rate", "roc_auc",
                               "average_precision", "intervals")} | {"fail": th_fail, "review": th_review}


def row(name: str, p: dict) -> str:
    iv = p["intervals"]

    def pct(r: dict) -> str:
        return f"{100 * (r['rate'] or 0):.1f} % [{100 * r['low']:.1f}-{100 * r['high']:.1f}]"

    esc = {**iv["recall"], "rate": 1 - (iv["recall"]["rate"] or 0), "low": 1 - iv["recall"]["high"],
           "high": 1 - iv["recall"]["low"]}
    return (f"| {name} | {p['escapes']}/{p['defects']}: {pct(esc)} | {p['false_rejects']}/{p['good']}: "
            f"{pct(iv['false_reject'])} | {pct(iv['review'])} |")


def ksdd_every_fold() -> dict:
    """All 52 KolektorSDD defects as test, from ``train_ksdd.py``'s three fold models (no training): fold i
    is tested with model i at thresholds chosen on the held-out scores of the other two folds (by their
    own models), against model i's own val split. Cross-fitting as the transfer it relies on."""
    runs = ROOT / "runs" / "bench-ksdd"
    held, vals = [], []
    for i in range(3):
        view = training_dataset(TrainConfig(data=str(ROOT / "data" / "kolektorsdd"), out="unused", fold=i))
        held.append(scores_of(runs / f"fold{i}" / "bundle", view, "test"))
        vals.append(scores_of(runs / f"fold{i}" / "bundle", view, "val"))
    rows: dict = {}
    for name, own, band in (("single split, no band (before)", True, None), ("single split, review band", True, 0.01),
                            ("cross-fitted on the other two folds, review band", False, 0.01)):
        verdicts, labels = [], []
        for i in range(3):
            cal_s, cal_d = vals[i] if own else (np.concatenate([held[j][0] for j in range(3) if j != i]),
                                                np.concatenate([held[j][1] for j in range(3) if j != i]))
            verdicts.append(outcomes(held[i][0], calibrate(cal_s, cal_d, review_false_reject=band).thresholds))
            labels.append(held[i][1])
        pf = pass_fail_outcomes(np.concatenate(verdicts), np.concatenate(labels))
        n = sum(len(v) for v in verdicts)
        rows[name] = {**pf, "intervals": intervals(pf, n), "roc_auc": None, "average_precision": None}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", required=True, choices=("ksdd", "elpv", "sim"))
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--single-only", action="store_true", help="only the single-split rows (no cross-fitting)")
    ap.add_argument("--every-fold", action="store_true", help="ksdd only: all 52 defects from train_ksdd.py's "
                    "three fold models, cross-fitting over the other two folds (no training)")
    a = ap.parse_args()
    if a.every_fold:
        rows = ksdd_every_fold()
        print(json.dumps(rows, indent=2, default=str))
        _print_rows(rows)
        return
    out = a.out or ROOT / "runs" / f"crossfit-{a.set}"
    data, single_cfg = prepared(a.set)
    single_cfg = single_cfg or TrainConfig(data=str(data), out=str(out / "single"))
    single = train(single_cfg, progress=False)
    view = training_dataset(single_cfg)
    val_s, val_d = scores_of(single.bundle_path, view, "val")
    test_s, test_d = scores_of(single.bundle_path, view, "test")
    rows = {}
    for name, band in (("single split, no band (before)", None), ("single split, review band", 0.01)):
        cal = calibrate(val_s, val_d, review_false_reject=band)
        rows[name] = point(test_s, test_d, cal.thresholds.fail, cal.thresholds.review) | {"val_defects": cal.defects}
    if a.single_only:
        _print_rows(rows)
        return
    cf_cfg = TrainConfig(data=str(data), out=str(out / "crossfit"), folds=a.folds)
    crossfit = train_folds(cf_cfg, progress=False)
    th = load_bundle(crossfit.final.bundle_path).card.thresholds
    cf_s, cf_d = scores_of(crossfit.final.bundle_path, training_dataset(cf_cfg), "test")
    rows[f"cross-fitted ({a.folds} folds), final model"] = point(cf_s, cf_d, th.fail, th.review) | {
        "pool_defects": int(crossfit.pool.is_defect.sum())}
    ens = crossfit.summary.get("ensemble_of_fold_models_on_test")
    if ens:
        rows[f"cross-fitted, ensemble of the {a.folds} fold models"] = {
            k: ens[k] for k in ("defects", "good", "escapes", "false_rejects", "review_rate", "roc_auc",
                                "average_precision", "intervals")}
    result = {"set": a.set, "folds": a.folds, "rows": rows,
              "crossfit_calibration": crossfit.final.calibration, "report": str(crossfit.report)}
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    _print_rows(rows)


def _print_rows(rows: dict) -> None:
    print("\n| calibration | test escapes | auto false rejects | review rate |\n|---|---|---|---|")
    for name, p in rows.items():
        extra = "" if p["roc_auc"] is None else f" ROC AUC {p['roc_auc']:.4f}, AP {p['average_precision']:.4f}"
        print(row(name, p) + extra)


if __name__ == "__main__":
    main()
