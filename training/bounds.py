"""Exact (Clopper-Pearson) confidence bounds for the rates a threshold choice is judged by.

A recall of 100 % on 8 validation defects says little; these bounds say how little: with no
escape among n defects, recall is at least alpha**(1/n) with confidence 1 - alpha (52 defects:
>= 94.4 % at 95 %), and a 99.5 % recall target needs about 600 defects with none missed.
"""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import beta

CONFIDENCE = 0.95


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided exact interval for a rate of ``k`` events in ``n`` trials ((0, 1) when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    a = 1 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def lower_bound(successes: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided exact lower bound of a rate (recall: caught defects of n) at ``confidence``."""
    if n <= 0 or successes <= 0:
        return 0.0
    return 1.0 if successes > n else float(beta.ppf(1 - confidence, successes, n - successes + 1))


def upper_bound(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided exact upper bound of a rate (false rejects: k good parts failed of n)."""
    if n <= 0 or k >= n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def defects_needed(target: float, confidence: float = CONFIDENCE) -> int:
    """Defects that must all be caught before recall >= ``target`` holds at ``confidence``."""
    if target >= 1:
        return math.inf  # type: ignore[return-value]
    return math.ceil(math.log(1 - confidence) / math.log(target))


def rate(k: int, n: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``k`` of ``n`` as a rate with its exact interval (None when n is 0)."""
    lo, hi = clopper_pearson(k, n, confidence)
    return {"k": int(k), "n": int(n), "rate": k / n if n else None, "low": lo, "high": hi}


def recall_support(caught: int, defects: int, target: float, confidence: float = CONFIDENCE) -> str:
    """What ``defects`` labelled defects can say about recall, in one sentence for the engineer."""
    missed = defects - caught
    bound = lower_bound(caught, defects, confidence)
    what = "no escape" if missed == 0 else f"{missed} escape{'s' if missed > 1 else ''}"
    text = (f"{what} among {defects} defects bounds recall at >= {100 * bound:.1f} % with "
            f"{100 * confidence:.0f} % confidence")
    if bound < target:
        need = defects_needed(target, confidence)
        text += (f"; {100 * target:g} % needs about {need} defects with none missed" if need != math.inf
                 else f"; {100 * target:g} % can never be shown from samples")
    return text


def intervals(pass_fail: dict[str, Any], n: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Exact intervals of a ``training.metrics.pass_fail`` result on ``n`` images: recall (fail and
    review count as caught), automatic false rejects, and the share sent to review."""
    defects, good = pass_fail["defects"], pass_fail["good"]
    return {"recall": rate(defects - pass_fail["escapes"], defects, confidence),
            "false_reject": rate(pass_fail["false_rejects"], good, confidence),
            "review": rate(round(pass_fail["review_rate"] * n), n, confidence), "confidence": confidence}
