"""The exact bounds match an independent computation: the binomial tail solved for p (scipy's brentq
on the binomial CDF), not the beta quantiles the module uses."""

from __future__ import annotations

import math

import pytest
from scipy.optimize import brentq
from scipy.stats import binom

from training.bounds import clopper_pearson, defects_needed, lower_bound, recall_support, upper_bound


def _reference(k: int, n: int, alpha: float) -> tuple[float, float]:
    # the Clopper-Pearson definition: P(X >= k | lo) = alpha/2 and P(X <= k | hi) = alpha/2
    lo = 0.0 if k == 0 else brentq(lambda p: binom.sf(k - 1, n, p) - alpha / 2, 1e-12, 1 - 1e-12)
    hi = 1.0 if k == n else brentq(lambda p: binom.cdf(k, n, p) - alpha / 2, 1e-12, 1 - 1e-12)
    return lo, hi


@pytest.mark.parametrize(("k", "n"), [(0, 8), (1, 8), (0, 52), (3, 348), (14, 348), (52, 52), (250, 500)])
def test_clopper_pearson_matches_the_binomial_definition(k: int, n: int) -> None:
    lo, hi = clopper_pearson(k, n, 0.95)
    rlo, rhi = _reference(k, n, 0.05)
    assert lo == pytest.approx(rlo, abs=1e-7) and hi == pytest.approx(rhi, abs=1e-7)


def test_one_sided_bounds() -> None:
    # no miss among n: the lower bound of recall solves p**n = alpha
    assert lower_bound(52, 52) == pytest.approx(0.05 ** (1 / 52))
    assert lower_bound(52, 52) == pytest.approx(0.944, abs=5e-4)
    ref = brentq(lambda p: binom.cdf(3, 348, p) - 0.05, 1e-9, 1 - 1e-9)
    assert upper_bound(3, 348) == pytest.approx(ref, abs=1e-7)
    assert lower_bound(0, 10) == 0.0 and upper_bound(10, 10) == 1.0


def test_defects_needed_for_a_target() -> None:
    n = defects_needed(0.995)
    assert 0.995 ** n <= 0.05 < 0.995 ** (n - 1)  # the smallest n that shows 99.5 % at 95 %
    assert 590 < n < 610
    assert defects_needed(1.0) == math.inf


def test_support_sentence() -> None:
    text = recall_support(52, 52, 0.995)
    assert text.startswith("no escape among 52 defects bounds recall at >= 94.4 %")
    assert "598 defects" in text
    assert "needs" not in recall_support(700, 700, 0.995)
    assert recall_support(50, 52, 0.9).startswith("2 escapes among 52")
