"""What each parameter does: drivers ranked with intervals, partial dependence, and the observed fail rate.

Partial dependence is the model's average prediction with one parameter set to a value on every
part (the others as they were); it is evaluated only inside the observed range (the 1st to 99th
percentile) so a curve never shows a prediction where the line never ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from analysis.table import Column, ProcessTable, level_name

RANGE_Q = (0.01, 0.99)  # the observed range a curve or a window may use
GRID = 24
BINS = 10
PD_ROWS = 600  # parts the partial dependence averages over (a fixed sample: its cost is bounded)
DRIVER_SHARE = 0.1  # a driver's importance is at least this share of the strongest one's (a parameter
# confounded with a driver, like the tool in use with its wear, keeps a few per cent)


@dataclass(frozen=True)
class Driver:
    name: str
    kind: str
    importance: float  # mean drop in ROC AUC when the parameter is shuffled
    low: float  # 2.5th and 97.5th percentiles over folds and shuffles
    high: float
    is_driver: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "importance": round(self.importance, 5),
                "interval": [round(self.low, 5), round(self.high, 5)], "driver": self.is_driver}


def rank(table: ProcessTable, values: np.ndarray) -> list[Driver]:
    """Columns by importance. A driver's interval lies above zero and its importance is not negligible
    next to the strongest one; an empty ``values`` (no fold could be scored) names no driver."""
    if values.shape[1] == 0:
        return [Driver(c.name, c.kind, 0.0, 0.0, 0.0, False) for c in table.columns]
    mean = values.mean(axis=1)
    lo, hi = np.percentile(values, [2.5, 97.5], axis=1)
    top = max(float(mean.max()), 1e-9)
    out = [Driver(c.name, c.kind, float(m), float(a), float(b), bool(a > 0 and m >= DRIVER_SHARE * top))
           for c, m, a, b in zip(table.columns, mean, lo, hi, strict=True)]
    return sorted(out, key=lambda d: -d.importance)


def sample_rows(X: np.ndarray, n: int = PD_ROWS, seed: int = 0) -> np.ndarray:
    if len(X) <= n:
        return X
    return X[np.random.default_rng(seed).choice(len(X), n, replace=False)]


def predict_with(model: Any, rows: np.ndarray, cols: list[int], settings: np.ndarray) -> np.ndarray:
    """Mean P(fail) over ``rows`` with columns ``cols`` set to each row of ``settings`` (S x len(cols))."""
    s = len(settings)
    big = np.repeat(rows[None, :, :], s, axis=0)
    big[:, :, cols] = settings[:, None, :]
    p = model.predict_proba(big.reshape(-1, rows.shape[1]))[:, 1]
    return p.reshape(s, len(rows)).mean(axis=1)


def observed_range(values: np.ndarray) -> tuple[float, float]:
    v = values[~np.isnan(values)]
    lo, hi = np.quantile(v, RANGE_Q)
    return float(lo), float(hi)


def grid_of(col: Column, values: np.ndarray, n: int = GRID) -> np.ndarray:
    if col.kind == "categorical":
        return np.arange(len(col.levels), dtype=np.float64)
    lo, hi = observed_range(values)
    uniq = np.unique(values[(values >= lo) & (values <= hi)])
    return uniq if len(uniq) <= n else np.linspace(lo, hi, n)


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = binomtest(k, n).proportion_ci(method="exact") if n else (0.0, 1.0)
    return {"fails": k, "parts": n, "rate": k / n if n else None, "low": float(lo), "high": float(hi)}


def observed(col: Column, values: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """The fail rate in bins of the parameter (deciles; levels for a category), with exact intervals."""
    ok = ~np.isnan(values)
    out = []
    if col.kind == "categorical":
        for code, name in enumerate(col.levels):
            sel = ok & (values == code)
            out.append({"level": name, **_rate(int(y[sel].sum()), int(sel.sum()))})
        return out
    edges = np.unique(np.quantile(values[ok], np.linspace(0, 1, BINS + 1)))
    idx = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, len(edges) - 2)
    for b in range(len(edges) - 1):
        sel = idx == b
        out.append({"from": float(edges[b]), "to": float(edges[b + 1]),
                    **_rate(int(y[ok][sel].sum()), int(sel.sum()))})
    return out


def curve(model: Any, table: ProcessTable, name: str, y: np.ndarray) -> dict[str, Any]:
    """Partial dependence and observed fail rate of one parameter, with the data's density."""
    j = table.column(name)
    col, values = table.columns[j], table.X[:, j]
    grid = grid_of(col, values)
    pd = predict_with(model, sample_rows(table.X), [j], grid[:, None])
    ok = values[~np.isnan(values)]
    out: dict[str, Any] = {"name": name, "kind": col.kind, "partial_dependence": [round(float(p), 5) for p in pd],
                           "observed": observed(col, values, y)}
    if col.kind == "categorical":
        out["grid"] = [level_name(col, g) for g in grid]
        out["density"] = [int((ok == g).sum()) for g in grid]
    else:
        out["grid"] = [float(g) for g in grid]
        counts, edges = np.histogram(ok, bins=30)
        out["density"] = {"counts": counts.tolist(), "edges": [float(e) for e in edges]}
    return out
