"""P(fail | process parameters), fitted with scikit-learn and judged on parts the model never saw.

Two candidates: gradient boosting (``HistGradientBoostingClassifier``: missing values and
categories natively, the usual choice for tabular data) and a small neural network
(``MLPClassifier``, as in the founding documents' example), kept only when its cross-validated
AUC is clearly better. Folds are blocks of consecutive parts, not shuffled parts: process
settings persist for hundreds of parts, and a shuffled split would score a model on neighbours
of its training parts and report an AUC the next shift will not see.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

BLOCKS_PER_FOLD = 4  # time blocks per fold: each fold sees several stretches of the run
MLP_MARGIN = 0.01  # the network must beat boosting's AUC by this much to be used
BOOTSTRAPS = 100
BLOCKS = 50  # bootstrap blocks of consecutive parts


def gradient_boosting(categorical: np.ndarray) -> ClassifierMixin:
    # shallow trees, slow learning: process effects are smooth, and a smooth fit gives honest curves
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.03, max_depth=2, min_samples_leaf=80,
                                          categorical_features=categorical, early_stopping=False, random_state=0)


def small_network(categorical: np.ndarray) -> ClassifierMixin:
    num, cat = np.flatnonzero(~categorical), np.flatnonzero(categorical)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value=-1.0),
                              OneHotEncoder(handle_unknown="ignore")), cat),
    ])
    # strongly regularised: a lightly regularised net learned each stretch of the run and scored 0.55
    # on the next one (cross-validated ROC AUC, simulated line); alpha 1.0 reaches boosting's 0.66
    net = MLPClassifier(hidden_layer_sizes=(16, 8), alpha=1.0, learning_rate_init=0.003, max_iter=800,
                        random_state=0)
    return Pipeline([("prep", prep), ("net", net)])


CANDIDATES: dict[str, Callable[[np.ndarray], ClassifierMixin]] = {
    "gradient boosting": gradient_boosting, "neural network": small_network,
}


@dataclass
class CrossFit:
    """A model kind fitted on K-1 folds K times, with its out-of-fold predictions."""

    kind: str
    models: list[ClassifierMixin]
    tests: list[np.ndarray]  # row indices each fold model never saw
    oof: np.ndarray  # out-of-fold P(fail)
    auc: float | None  # ROC AUC of the pooled out-of-fold predictions

    def fit_all(self, X: np.ndarray, y: np.ndarray, categorical: np.ndarray) -> ClassifierMixin:
        return _fit(CANDIDATES[self.kind](categorical), X, y)


def time_folds(n: int, k: int) -> np.ndarray:
    """Group ids of ``k * BLOCKS_PER_FOLD`` blocks of consecutive rows (rows in time order)."""
    blocks = k * BLOCKS_PER_FOLD
    return (np.arange(n) * blocks) // max(n, 1)


def _fit(model: ClassifierMixin, X: np.ndarray, y: np.ndarray) -> ClassifierMixin:
    with warnings.catch_warnings():  # a network stopping at max_iter still predicts; the AUC judges it
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(model).fit(X, y)


def cross_fit(kind: str, X: np.ndarray, y: np.ndarray, categorical: np.ndarray, folds: int) -> CrossFit:
    groups = time_folds(len(y), folds)
    models, tests = [], []
    oof = np.full(len(y), np.nan)
    for train, test in GroupKFold(folds).split(X, y, groups):
        if len(np.unique(y[train])) < 2:
            continue  # a fold without failures teaches nothing; its parts stay unscored
        m = _fit(CANDIDATES[kind](categorical), X[train], y[train])
        oof[test] = m.predict_proba(X[test])[:, 1]
        models.append(m)
        tests.append(test)
    scored = ~np.isnan(oof)
    auc = float(roc_auc_score(y[scored], oof[scored])) if len(np.unique(y[scored])) == 2 else None
    return CrossFit(kind, models, tests, oof, auc)


def choose(X: np.ndarray, y: np.ndarray, categorical: np.ndarray, folds: int,
           kinds: tuple[str, ...] = tuple(CANDIDATES)) -> tuple[CrossFit, dict[str, float | None]]:
    """The better candidate by out-of-fold AUC (boosting unless the network beats it by MLP_MARGIN)."""
    fits = {k: cross_fit(k, X, y, categorical, folds) for k in kinds}
    aucs = {k: f.auc for k, f in fits.items()}
    best = fits[kinds[0]]
    for f in fits.values():
        if f.auc is not None and (best.auc is None or f.auc > best.auc + MLP_MARGIN):
            best = f
    return best, aucs


def importances(fit: CrossFit, X: np.ndarray, y: np.ndarray, repeats: int, boots: int = BOOTSTRAPS,
                seed: int = 0) -> np.ndarray:
    """Permutation importance of every column: the drop in pooled out-of-fold ROC AUC when the column
    is shuffled within each fold's held-out parts (each fold model scoring parts it never saw).
    Returns ``boots`` values per column: a paired block bootstrap of the drop averaged over
    ``repeats`` shuffles, so the spread says how sure the ranking is given these parts. Blocks of
    consecutive parts, because neighbours share their settings: resampling single parts would
    count a few hundred parts of one setpoint as a few hundred independent observations."""
    scored = ~np.isnan(fit.oof)
    if len(np.unique(y[scored])) < 2:
        return np.zeros((X.shape[1], 0))
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(scored)
    length = max(20, len(idx) // BLOCKS)
    starts = np.arange(0, len(idx), length)
    samples = [np.concatenate([idx[s : s + length] for s in rng.choice(starts, len(starts))]) for _ in range(boots)]
    samples = [s for s in samples if len(np.unique(y[s])) == 2]
    base = np.array([_auc(y[s], fit.oof[s]) for s in samples])
    out = np.zeros((X.shape[1], len(samples)))
    for j in range(X.shape[1]):
        for _ in range(repeats):
            perm = fit.oof.copy()
            for m, test in zip(fit.models, fit.tests, strict=True):
                Xp = X[test].copy()
                Xp[:, j] = Xp[rng.permutation(len(test)), j]
                perm[test] = m.predict_proba(Xp)[:, 1]
            out[j] += base - np.array([_auc(y[s], perm[s]) for s in samples])
    return out / repeats


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney): the same as roc_auc_score, a tenth of the cost in this loop."""
    r = rankdata(p)
    pos = y == 1
    n1 = int(pos.sum())
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))
