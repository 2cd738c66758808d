"""``analyze(records)``: from logged verdicts with process parameters to drivers, curves and a window.

Every answer says how much it rests on. Too few parts or failures, or a model that cannot tell
failing parts from passing ones on parts it never saw (cross-validated ROC AUC below
``WEAK_AUC``), give an "inconclusive" or "weak" result that names no window, never a confident
one from too little data.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.effects import Driver, curve, rank
from analysis.models import choose, cross_fit, importances
from analysis.table import PartRecord, ProcessTable, build_table
from analysis.window import Window, suggest

MIN_PARTS = 200
MIN_EVENTS = 20  # failures (and passes) needed before a model is fitted at all
WEAK_AUC = 0.6  # a part's fate is mostly chance even when settings matter: 0.74 is the best possible on the
# simulated line, whose settings multiply the fail rate by eight
CURVES = 6  # parameters drawn: the drivers first, then the next most important


@dataclass
class ProcessAnalysis:
    status: str  # "ok", "weak" (a model that explains little) or "inconclusive" (too little data)
    message: str
    parts: int = 0
    fails: int = 0
    without_process: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    drivers: list[Driver] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    window: Window | None = None
    classes: list[dict[str, Any]] = field(default_factory=list)
    scope: dict[str, Any] = field(default_factory=dict)  # what the caller selected: time range, stations, ...
    seconds: float = 0.0

    @property
    def top_drivers(self) -> list[Driver]:
        return [d for d in self.drivers if d.is_driver]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "scope": self.scope, "parts": self.parts,
                "fails": self.fails, "fail_rate": round(self.fails / self.parts, 5) if self.parts else None,
                "parts_without_process": self.without_process, "columns": self.columns, "notes": self.notes,
                "model": self.model, "drivers": [d.to_dict() for d in self.drivers],
                "curves": self.curves, "window": self.window.to_dict() if self.window else None,
                "classes": self.classes, "seconds": round(self.seconds, 2)}


def _enough(table: ProcessTable, y: np.ndarray, what: str) -> str | None:
    n, k = len(y), int(y.sum())
    if not table.columns:
        return "no usable process parameter is left (see the notes)"
    if n < MIN_PARTS:
        return f"only {n} parts carry process parameters; at least {MIN_PARTS} are needed to say anything"
    if k < MIN_EVENTS:
        return f"only {k} of {n} parts {what}; at least {MIN_EVENTS} are needed to learn what drives them"
    if n - k < MIN_EVENTS:
        return f"only {n - k} of {n} parts passed; at least {MIN_EVENTS} are needed for a comparison"
    return None


def _classes(table: ProcessTable, count_review: bool, folds: int, repeats: int) -> list[dict[str, Any]]:
    """The drivers of each defect class that failed often enough (boosting only: it is a ranking)."""
    labels = Counter(r.label for r, f in zip(table.records, table.outcome(count_review=count_review), strict=True)
                     if f)
    out = []
    for label, n in labels.most_common():
        y = table.outcome(count_review=count_review, label=label)
        if n < MIN_EVENTS:
            out.append({"label": label, "fails": n, "status": "inconclusive",
                        "message": f"only {n} parts; at least {MIN_EVENTS} are needed"})
            continue
        fit = cross_fit("gradient boosting", table.X, y, table.categorical, folds)
        drivers = rank(table, importances(fit, table.X, y, repeats))
        weak = fit.auc is None or fit.auc < WEAK_AUC
        out.append({"label": label, "fails": n, "status": "weak" if weak else "ok",
                    "auc": None if fit.auc is None else round(fit.auc, 4),
                    "drivers": [d.to_dict() for d in drivers if d.is_driver and not weak][:3]})
    return out


def analyze(records: Iterable[PartRecord], *, folds: int = 5, repeats: int = 5, count_review: bool = False,
            per_class: bool = True, network: bool = True, window: bool = True,
            scope: dict[str, Any] | None = None) -> ProcessAnalysis:
    t0 = time.monotonic()
    rows = sorted(records, key=lambda r: r.ts)  # time order: the folds are blocks of consecutive parts
    table = build_table(rows)
    y = table.outcome(count_review=count_review)
    what = "failed or went to review" if count_review else "failed"
    res = ProcessAnalysis("inconclusive", "", parts=len(y), fails=int(y.sum()), without_process=table.without_process,
                          columns=[c.describe(table.X[:, j]) for j, c in enumerate(table.columns)], notes=table.notes,
                          scope=scope or {})
    if not rows:
        res.message = "no verdicts in the selected range"
    elif not table.records:
        res.message = (f"none of the {len(rows)} verdicts carry process parameters: stations send them with each "
                       "image (the X-Process header, or defectscope station --process)")
    else:
        res.message = _enough(table, y, what) or ""
    if res.message:
        res.seconds = time.monotonic() - t0
        return res
    kinds = ("gradient boosting", "neural network") if network else ("gradient boosting",)
    fit, aucs = choose(table.X, y, table.categorical, folds, kinds)
    res.model = {"kind": fit.kind, "cv_auc": None if fit.auc is None else round(fit.auc, 4), "folds": folds,
                 "candidates": {k: None if a is None else round(a, 4) for k, a in aucs.items()},
                 "outcome": what}
    res.drivers = rank(table, importances(fit, table.X, y, repeats))
    final = fit.fit_all(table.X, y, table.categorical)
    order = [d.name for d in res.drivers]
    res.curves = [curve(final, table, name, y) for name in order[:CURVES]]
    if fit.auc is None or fit.auc < WEAK_AUC:
        res.status = "weak"
        res.message = (f"the parameters explain little of which parts {what} (cross-validated ROC AUC "
                       f"{'n/a' if fit.auc is None else f'{fit.auc:.2f}'} < {WEAK_AUC}): no driver or window is "
                       "claimed; log more parameters or more parts")
        for i, d in enumerate(res.drivers):
            res.drivers[i] = Driver(d.name, d.kind, d.importance, d.low, d.high, False)
    else:
        res.status = "ok"
        top = [d.name for d in res.top_drivers]
        res.message = (f"{len(top)} driver(s) of failures: {', '.join(top)}" if top else
                       "no parameter drives failures detectably")
        if window and top:
            res.window = suggest(final, fit.models, table, top, y)
    if per_class:
        res.classes = _classes(table, count_review, folds, repeats)
    res.seconds = time.monotonic() - t0
    return res
