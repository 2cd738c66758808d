"""The settings window with the lowest predicted fail rate, inside the range the line actually ran.

One range per driver, from its partial dependence (averaged over the final model and the fold
models, so one model's wiggle is not a recommendation): the driver's observed range (1st to 99th
percentile) is cut into ``CELLS`` cells holding equal numbers of parts; the cells within ``FLAT``
of the driver's effect above its lowest form the flat bottom, and its run with the most parts is
kept, less ``MARGIN`` cells on each side that borders rising cells: a fitted curve rounds a knee
off, so the true rate is already rising where the fitted one starts to. (Widening the window while
the prediction stayed "about as low" was tried and crept over the knees.) A window holds at least
``MIN_SUPPORT`` of the parts; where the margins leave fewer it grows back towards the lower
neighbour. A categorical driver gets the level with the lowest partial dependence among levels
with enough parts.

Per driver rather than one joint box: a plant changes setpoints a few dozen times in a few
thousand parts, so the corners of a joint box are rarely observed together, and a joint search
rewards whatever the model guesses there. The window's fail rate is then predicted jointly
(settings spread evenly over the box, the other parameters as they were) and checked against the
parts that did run inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from analysis.effects import RANGE_Q, predict_with, sample_rows
from analysis.table import ProcessTable, level_name

CELLS = 20
MAX_DRIVERS = 4
MIN_SUPPORT = 0.15  # share of the parts a driver's range holds
FLAT = 0.05  # cells within this share of the driver's effect above its lowest form the flat bottom
MARGIN = 3  # cells given up where the flat bottom borders rising cells
WINDOW_ROWS = 300
SETTINGS = 400  # random settings inside the box for its predicted fail rate (x WINDOW_ROWS parts per model)


@dataclass(frozen=True)
class Window:
    ranges: dict[str, tuple[float, float]]  # numeric drivers: [low, high]
    levels: dict[str, str]  # categorical drivers: the level to run with
    predicted: float  # the final model's fail rate for settings spread over the window
    spread: tuple[float, float]  # the same from each fold model: min, max
    current: float  # the model's fail rate for the parts as they ran
    parts: int  # observed parts inside the window (every driver inside its range)
    fails: int
    observed_interval: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"ranges": {k: [round(a, 6), round(b, 6)] for k, (a, b) in self.ranges.items()},
                "levels": self.levels, "predicted_fail_rate": round(self.predicted, 5),
                "predicted_range_over_folds": [round(v, 5) for v in self.spread],
                "current_fail_rate": round(self.current, 5), "parts_inside": self.parts, "fails_inside": self.fails,
                "observed_fail_rate": round(self.fails / self.parts, 5) if self.parts else None,
                "observed_interval": [round(v, 5) for v in self.observed_interval]}


def _mean_pd(models: list[Any], rows: np.ndarray, j: int, grid: np.ndarray) -> np.ndarray:
    return np.mean([predict_with(m, rows, [j], grid[:, None]) for m in models], axis=0)


def _numeric_range(models: list[Any], rows: np.ndarray, v: np.ndarray, j: int) -> tuple[float, float]:
    ok = v[~np.isnan(v)]
    lo, hi = np.quantile(ok, RANGE_Q)
    inside = ok[(ok >= lo) & (ok <= hi)]
    edges = np.unique(np.quantile(inside, np.linspace(0, 1, CELLS + 1)))
    if len(edges) < 3:
        return float(lo), float(hi)
    n = len(edges) - 1
    counts = np.histogram(inside, edges)[0].astype(np.float64)
    pd = _mean_pd(models, rows, j, (edges[:-1] + edges[1:]) / 2)
    flat = pd <= pd.min() + FLAT * (pd.max() - pd.min())
    runs, start = [], None  # maximal runs of flat cells: (first, last)
    for c in range(n + 1):
        if c < n and flat[c] and start is None:
            start = c
        elif (c == n or not flat[c]) and start is not None:
            runs.append((start, c - 1))
            start = None
    a, b = max(runs, key=lambda r: counts[r[0] : r[1] + 1].sum())
    need = MIN_SUPPORT * len(inside)
    ta, tb = a + MARGIN * (a > 0), b - MARGIN * (b < n - 1)  # off the edges that border rising cells
    while ta <= tb and counts[ta : tb + 1].sum() < need and (ta > a or tb < b):
        ta, tb = (ta - 1, tb) if ta > a and (tb == b or pd[ta - 1] <= pd[tb + 1]) else (ta, tb + 1)
    if ta > tb:
        ta = tb = (a + b) // 2
    while counts[ta : tb + 1].sum() < need and (ta > 0 or tb < n - 1):  # too few parts: the lower neighbour
        ta, tb = (ta - 1, tb) if ta > 0 and (tb == n - 1 or pd[ta - 1] <= pd[tb + 1]) else (ta, tb + 1)
    return float(edges[ta]), float(edges[tb + 1])


def _level(models: list[Any], rows: np.ndarray, table: ProcessTable, j: int) -> float:
    v = table.X[:, j]
    codes = np.arange(len(table.columns[j].levels), dtype=np.float64)
    counts = np.array([(v == c).sum() for c in codes])
    pd = _mean_pd(models, rows, j, codes)
    pd[counts < MIN_SUPPORT * len(v) / 2] = np.inf  # a rare level is no recommendation
    return float(codes[int(np.argmin(pd))]) if np.isfinite(pd).any() else float(codes[int(np.argmax(counts))])


def suggest(model: Any, fold_models: list[Any], table: ProcessTable, names: list[str], y: np.ndarray,
            seed: int = 0) -> Window:
    """The suggested window over ``names`` (the drivers, strongest first; at most MAX_DRIVERS)."""
    names = names[:MAX_DRIVERS]
    rows = sample_rows(table.X, WINDOW_ROWS)
    models = [model, *fold_models]
    ranges: dict[str, tuple[float, float]] = {}
    levels: dict[str, float] = {}
    for name in names:
        j = table.column(name)
        if table.columns[j].kind == "categorical":
            levels[name] = _level(models, rows, table, j)
        else:
            ranges[name] = _numeric_range(models, rows, table.X[:, j], j)
    rng = np.random.default_rng(seed)
    cols = [table.column(n) for n in (*ranges, *levels)]
    settings = np.column_stack([rng.uniform(a, b, SETTINGS) for a, b in ranges.values()] +
                               [np.full(SETTINGS, c) for c in levels.values()])
    rates = [float(predict_with(m, rows, cols, settings).mean()) for m in models]
    inside = np.ones(len(y), bool)
    for name, (a, b) in ranges.items():
        v = table.X[:, table.column(name)]
        inside &= (v >= a) & (v <= b)
    for name, code in levels.items():
        inside &= table.X[:, table.column(name)] == code
    k, n = int(y[inside].sum()), int(inside.sum())
    ci = binomtest(k, n).proportion_ci(method="exact") if n else (0.0, 1.0)
    current = float(model.predict_proba(table.X)[:, 1].mean())
    named = {name: level_name(table.columns[table.column(name)], c) for name, c in levels.items()}
    return Window(ranges, named, rates[0], (min(rates[1:] or rates), max(rates[1:] or rates)), current, n, k,
                  (float(ci[0]), float(ci[1])))
