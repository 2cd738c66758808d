"""Choose the thresholds (pass / review / fail) on labelled scores the model did not train on.

Three outcomes, as on a line: parts fail automatically above a threshold chosen for a false-reject
budget (by default at most 1 % of good parts auto-failed), go to review (a person looks) down to
the threshold that meets the defect-recall target, and pass below it. The engineer can ask for no
review band (one threshold, at the recall target) or for a review budget instead (the share of
all parts a person can look at). Every figure comes with its exact confidence interval
(``training.bounds``), and a sentence on what the number of defects can support.

A set without defects (or without good parts) cannot support a choice: we refuse, or with
``fallback`` keep the uncalibrated 0.5 and say so loudly; never a silent, useless threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from inspection.card import Thresholds
from inspection.errors import DefectscopeError
from training import bounds
from training.metrics import pass_fail

# The lowest threshold (pass below it) never lies above 0.5, which would pass parts the model itself
# calls more likely defective than good; on a small set that happens by chance, so it is capped.
MAX_FAIL = 0.5
FALSE_REJECT_BUDGET = 0.01  # default: good parts failed without a person looking
GOOD_ONLY_REVIEW = 0.04  # good-only band: a further share of good parts a person looks at (review budget's default)


class CalibrationError(DefectscopeError):
    """The labelled data cannot support a threshold choice."""


@dataclass(frozen=True)
class LabelledScores:
    """Defect scores of labelled images from models that did not train on them, to calibrate on."""

    scores: np.ndarray
    is_defect: np.ndarray
    source: str

    def __add__(self, other: LabelledScores) -> LabelledScores:
        return LabelledScores(np.r_[self.scores, other.scores], np.r_[self.is_defect, other.is_defect],
                              f"{self.source} + {other.source}")

    def to_dict(self) -> dict[str, Any]:
        """Compact, for the card (``metrics.calibration_pool``): recalibration from the line adds to it."""
        return {"source": self.source, "scores": " ".join(f"{float(s):.6g}" for s in self.scores),
                "defect": "".join("1" if d else "0" for d in self.is_defect)}  # one line each in card.json

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LabelledScores:
        try:
            scores = np.array([float(v) for v in str(raw["scores"]).split()], dtype=np.float64)
            flags = np.array([c == "1" for c in str(raw["defect"])], dtype=bool)
        except (KeyError, ValueError):
            raise CalibrationError("the card's calibration pool is damaged (unreadable scores)") from None
        if scores.shape != flags.shape:
            raise CalibrationError("the card's calibration pool is damaged (scores and labels differ in length)")
        return cls(scores, flags, raw.get("source", "the card's calibration pool"))


@dataclass(frozen=True)
class Calibration:
    thresholds: Thresholds
    target_recall: float
    defect_recall: float | None  # achieved on the calibration scores (fail + review count as caught)
    false_reject_rate: float | None  # good parts failed automatically
    review_rate: float  # all parts sent to review
    defects: int
    good: int
    calibrated: bool  # False when the fallback threshold was kept
    note: str  # what the engineer should know (small set, fallback, cap)
    mode: str = "band"  # band (false-reject budget), review-budget, single
    source: str = "val split"  # which scores: the val split, out-of-fold scores, reviewed verdicts
    bounds: dict[str, Any] = field(default_factory=dict)  # exact intervals of the three rates
    support: str = ""  # what the defects can show about recall

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recall_threshold(defect: np.ndarray, good: np.ndarray, target: float) -> float:
    """Highest threshold with recall >= target, moved down into the gap below it.

    Placing it midway between that defect score and the highest good score beneath it costs
    no false rejects on these scores and leaves a margin for defects scoring a bit lower later.
    """
    allowed = math.floor((1.0 - target) * len(defect) + 1e-9)  # defects that may escape
    t = float(np.sort(defect)[allowed])
    below = good[good < t]
    return (t + float(below.max())) / 2 if below.size else t


def _budget_threshold(good: np.ndarray, budget: float) -> float:
    """Lowest threshold at which at most a share ``budget`` of good parts scores at or above it."""
    allowed = math.floor(budget * len(good) + 1e-9)
    return float(np.sort(good)[::-1][allowed]) + 1e-6 if allowed < len(good) else 0.0


def _review_budget_threshold(scores: np.ndarray, review: float, budget: float) -> float:
    """Lowest fail threshold above ``review`` sending at most a share ``budget`` of all parts to review."""
    above = np.sort(scores[scores >= review])
    allowed = math.floor(budget * len(scores) + 1e-9)
    if allowed < len(above):
        return float(above[allowed])
    return min(1.0, float(above[-1]) + 1e-6) if above.size else review


def _floor6(x: float) -> float:
    """Six decimals for the card, rounded down so no calibration defect drops below the threshold."""
    return math.floor(x * 1e6) / 1e6


def _ceil6(x: float) -> float:
    """Six decimals rounded up, so no good part within the budget is failed by the rounding."""
    return min(1.0, math.ceil(x * 1e6 - 1e-9) / 1e6)


def calibrate(
    defect_scores: np.ndarray,
    is_defect: np.ndarray,
    *,
    target_recall: float = 0.995,
    review_false_reject: float | None = FALSE_REJECT_BUDGET,
    review_budget: float | None = None,
    fallback: bool = False,
    source: str = "val split",
    good_only: bool = False,
) -> Calibration:
    """Thresholds for ``defect_scores`` (summed defect-class probability) on labelled images.

    ``review_false_reject`` r: parts fail automatically only above the score where at most a share r
    of good parts would; scores between the recall threshold and that one go to review. None: one
    threshold at the recall target. ``review_budget`` b (instead of r): at most a share b of all
    parts goes to review, the fail threshold lies where that budget ends.
    """
    if not 0 < target_recall <= 1:
        raise CalibrationError(f"target recall {target_recall} must lie in (0, 1]")
    for name, v in (("review_false_reject", review_false_reject), ("review_budget", review_budget)):
        if v is not None and not 0 <= v < 1:
            raise CalibrationError(f"{name} {v} must lie in [0, 1)")
    scores = np.asarray(defect_scores, dtype=np.float64)
    is_defect = np.asarray(is_defect, dtype=bool)
    defect, good = scores[is_defect], scores[~is_defect]
    if good_only and defect.size == 0 and good.size:
        return _good_only(good, target_recall, review_false_reject, review_budget, source)
    if defect.size == 0 or good.size == 0:
        missing = "defective" if defect.size == 0 else "good"
        msg = (f"the calibration scores ({source}) hold no {missing} images ({len(defect)} defective, "
               f"{len(good)} good), so no threshold can be checked against a recall target")
        if not fallback:
            raise CalibrationError(msg + ": add labelled samples to the val split, or allow the fallback "
                                   "(--no-defects-fallback) to keep the uncalibrated 0.5 threshold")
        return Calibration(Thresholds(0.5), target_recall, None, None, 0.0, len(defect), len(good),
                           False, msg + "; kept the UNCALIBRATED fail threshold 0.5", "single", source)
    notes = []
    recall_t = _recall_threshold(defect, good, target_recall)
    if recall_t > MAX_FAIL:
        recall_t = MAX_FAIL
        notes.append(f"lowest threshold capped at {MAX_FAIL} (never less strict than the model's own argmax)")
    mode = "single" if review_budget is None and review_false_reject is None else (
        "review-budget" if review_budget is not None else "band")
    fail, review = recall_t, None
    if mode != "single":
        upper = (_review_budget_threshold(scores, recall_t, review_budget) if mode == "review-budget"
                 else _budget_threshold(good, review_false_reject))
        if upper > recall_t:
            fail, review = upper, recall_t
        else:
            notes.append("no review band needed: the recall threshold already meets the "
                         + ("review budget" if mode == "review-budget" else "false-reject budget"))
    # rounding to the card's six decimals errs towards what the budget bounds: a good part within the
    # false-reject budget is reviewed, a part beyond the review budget fails, no defect slips below review
    if review is None:
        th = Thresholds(fail=_floor6(fail))
    else:
        th = Thresholds(fail=max(_ceil6(fail) if mode == "band" else _floor6(fail), _floor6(review)),
                        review=_floor6(review))
    rates = pass_fail(scores, is_defect, th.fail, th.review)
    caught = len(defect) - rates["escapes"]
    interval = rates["intervals"]
    support = bounds.recall_support(caught, len(defect), target_recall)
    if bounds.lower_bound(caught, len(defect)) < target_recall:
        more = "add defect samples" + ("" if source.startswith("out-of-fold") else
                                       ", or calibrate on out-of-fold scores (train --folds K)")
        notes.append(f"the {target_recall:.1%} recall target cannot be verified on {len(defect)} defects: {more}")
    if rates["false_reject_rate"] > 0.2:
        notes.append(f"meeting the recall target fails {rates['false_reject_rate']:.0%} of good parts automatically: "
                     "the model does not separate good from defective well enough yet (train longer, add data, "
                     "or lower the target)")
    if rates["review_rate"] > 0.2:
        notes.append(f"{rates['review_rate']:.0%} of parts go to review: the model does not separate good from "
                     "defective well enough for the line yet, or the false-reject budget is too tight")
    return Calibration(th, target_recall, rates["defect_recall"], rates["false_reject_rate"], rates["review_rate"],
                       len(defect), len(good), True, "; ".join(notes), mode, source, interval, support)


def _good_only(good: np.ndarray, target_recall: float, review_false_reject: float | None,
               review_budget: float | None, source: str) -> Calibration:
    """Without defects only the good parts' side can be chosen: fail above the score that at most a
    share r of good parts reach (r: ``review_false_reject``, 1 % without a band), review down to where a
    further share b (``review_budget``, 4 %) would be looked at, pass below."""
    budget = FALSE_REJECT_BUDGET if review_false_reject is None else review_false_reject
    fail, notes = _budget_threshold(good, budget), []
    review = None
    if review_false_reject is not None or review_budget is not None:
        review = min(fail, _budget_threshold(good, budget + (GOOD_ONLY_REVIEW if review_budget is None
                                                             else review_budget)))
    if (review if review is not None else fail) > MAX_FAIL:
        notes.append(f"lowest threshold capped at {MAX_FAIL} (never less strict than the model's own argmax)")
        review, fail = (MAX_FAIL, fail) if review is not None else (None, MAX_FAIL)
    fail, review = _ceil6(fail), None if review is None or _ceil6(review) >= _ceil6(fail) else _ceil6(review)
    th = Thresholds(fail=fail, review=review)
    rates = pass_fail(good, np.zeros(good.size, bool), th.fail, th.review)
    notes.append(f"good parts only: the fail threshold is set for at most {budget:.1%} of good parts auto-failed; "
                 "recall cannot be measured without defects: evaluate on real defects as soon as there are some")
    return Calibration(th, target_recall, None, rates["false_reject_rate"], rates["review_rate"], 0, len(good), True,
                       "; ".join(notes), "good-only", source, rates["intervals"],
                       "no defects: nothing bounds recall yet")


def summary(cal: Calibration) -> str:
    """One line for the console: the thresholds and what they do on the calibration scores."""
    th, b = cal.thresholds, cal.bounds

    def pct(key: str) -> str:
        r = b[key]
        return f"{100 * (r['rate'] or 0):.2f}% [{100 * r['low']:.1f}-{100 * r['high']:.1f}]"

    head = f"fail >= {th.fail:.4g}" + (f", review >= {th.review:.4g}" if th.review is not None else "")
    if cal.mode == "good-only":
        return (f"{head}: auto false rejects {pct('false_reject')}, review {pct('review')} on {cal.good} good "
                f"images ({cal.source}; 95% exact intervals); recall not measured (no defects)")
    return (f"{head}: recall {pct('recall')} (target {100 * cal.target_recall:g}%), auto false rejects "
            f"{pct('false_reject')}, review {pct('review')} on {cal.defects} defective / {cal.good} good images "
            f"({cal.source}; 95% exact intervals)")
