"""Threshold calibration meets its targets on constructed scores (one threshold, the default review band,
a review budget), its bounds match an independent computation, and it refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import MAX_FAIL, CalibrationError, calibrate


def scores(n_def: int = 1000, n_good: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.r_[rng.beta(2, 5, n_def) * 0.9 + 0.05, rng.beta(1.2, 12, n_good) * 0.9]  # overlapping scores
    return s, np.r_[np.ones(n_def, bool), np.zeros(n_good, bool)]


@pytest.mark.parametrize("target", [0.9, 0.99, 0.995, 1.0])
def test_recall_target_met_with_the_highest_such_threshold(target: float) -> None:
    s, d = scores()
    cal = calibrate(s, d, target_recall=target, review_false_reject=None)
    assert cal.calibrated and cal.mode == "single"
    recall = (s[d] >= cal.thresholds.fail).mean()
    assert recall >= target
    assert cal.defect_recall == pytest.approx(recall)
    assert cal.false_reject_rate == pytest.approx((s[~d] >= cal.thresholds.fail).mean())
    if cal.thresholds.fail < MAX_FAIL:
        # the next defect score above the threshold would drop recall below the target
        nxt = np.sort(s[d][s[d] >= cal.thresholds.fail])[0] + 1e-9
        assert (s[d] >= nxt).mean() < target


def test_threshold_sits_in_the_gap_below_the_recall_point() -> None:
    s = np.array([0.30, 0.40, 0.45, 0.05, 0.10, 0.20])
    d = np.array([True, True, True, False, False, False])
    cal = calibrate(s, d, target_recall=1.0)
    assert cal.thresholds.review is None  # already within the false-reject budget: no band needed
    assert cal.thresholds.fail == pytest.approx(0.25)  # midway between good 0.20 and defect 0.30
    assert cal.false_reject_rate == 0.0 and cal.defect_recall == 1.0


def test_threshold_never_above_argmax_point() -> None:
    s = np.array([0.9, 0.95, 0.99, 0.1, 0.2])
    d = np.array([True, True, True, False, False])
    cal = calibrate(s, d, target_recall=0.5, review_false_reject=None)
    assert cal.thresholds.fail == MAX_FAIL
    assert "capped" in cal.note


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_review_band_by_default_bounds_escapes_and_automatic_rejects(seed: int) -> None:
    s, d = scores(seed=seed)
    cal = calibrate(s, d, target_recall=0.995)
    th = cal.thresholds
    assert cal.mode == "band"
    assert th.review is not None and th.review < th.fail
    assert (s[d] >= th.review).mean() >= 0.995  # escapes: defects scored below the review threshold
    assert (s[~d] >= th.fail).mean() <= 0.01  # good parts failed without a person looking
    assert cal.review_rate == pytest.approx(((s >= th.review) & (s < th.fail)).mean())


@pytest.mark.parametrize("missing", ["defect", "good"])
def test_validation_without_defects_or_good_is_refused(missing: str) -> None:
    s, d = scores(200, 200)
    keep = ~d if missing == "defect" else d
    with pytest.raises(CalibrationError, match=r"no (defective|good) images"):
        calibrate(s[keep], d[keep])


def test_fallback_is_explicit() -> None:
    s, d = scores(0, 300)
    cal = calibrate(s, d, fallback=True)
    assert not cal.calibrated
    assert cal.thresholds.fail == 0.5
    assert "UNCALIBRATED" in cal.note


def test_small_validation_set_is_flagged() -> None:
    s, d = scores(50, 50)
    cal = calibrate(s, d, target_recall=0.995)
    assert "cannot be verified" in cal.note
    assert "no escape among 50 defects bounds recall at >= 94.2 %" in cal.support
    assert "needs about 598 defects" in cal.support


def test_review_budget_caps_the_review_share() -> None:
    s, d = scores()
    cal = calibrate(s, d, target_recall=0.99, review_budget=0.05)
    th = cal.thresholds
    assert cal.mode == "review-budget" and th.review is not None
    assert ((s >= th.review) & (s < th.fail)).mean() <= 0.05
    assert (s[d] >= th.review).mean() >= 0.99
    # the smallest fail threshold meeting the budget: one step lower would review more than 5 %
    lower = np.sort(s[s < th.fail])[-1]
    assert ((s >= th.review) & (s < lower)).mean() <= 0.05 < ((s >= th.review) & (s <= th.fail)).mean() + 1e-9


def test_band_with_separable_scores_costs_no_review() -> None:
    rng = np.random.default_rng(3)
    s = np.r_[rng.uniform(0.6, 1.0, 60), rng.uniform(0.0, 0.3, 600)]
    d = np.r_[np.ones(60, bool), np.zeros(600, bool)]
    cal = calibrate(s, d)
    assert cal.thresholds.review is None and cal.review_rate == 0 and cal.false_reject_rate == 0


def test_intervals_come_with_every_figure() -> None:
    s, d = scores(200, 800)
    cal = calibrate(s, d, target_recall=0.95)
    b = cal.bounds
    assert b["recall"]["n"] == 200 and b["false_reject"]["n"] == 800 and b["review"]["n"] == 1000
    for key in ("recall", "false_reject", "review"):
        assert b[key]["low"] <= b[key]["rate"] <= b[key]["high"]
