"""Choose the fail threshold (and an optional review band) on validation defect scores.

The engineer gives a defect-recall target (say 99.5%, i.e. at most 0.5% escapes); we pick
the highest threshold that still meets it on validation, because a higher threshold fails
fewer good parts. A validation set without defects (or without good parts) cannot support
that choice: we refuse, or with ``fallback`` keep the uncalibrated 0.5 and say so loudly;
never a silent, useless threshold (a threshold of 1.0 "meets" any recall on zero defects).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from inspection.card import Thresholds
from inspection.errors import DefectscopeError
from training.metrics import pass_fail

# A threshold above 0.5 would pass parts the model itself calls more likely defective than
# good; on a small validation set that happens by chance, so the calibrated value is capped.
MAX_FAIL = 0.5


class CalibrationError(DefectscopeError):
    """The validation data cannot support a threshold choice."""


@dataclass(frozen=True)
class Calibration:
    thresholds: Thresholds
    target_recall: float
    defect_recall: float | None  # achieved on validation
    false_reject_rate: float | None
    review_rate: float
    defects: int
    good: int
    calibrated: bool  # False when the fallback threshold was kept
    note: str  # what the engineer should know (small set, fallback, cap)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recall_threshold(defect: np.ndarray, good: np.ndarray, target: float) -> float:
    """Highest threshold with recall >= target, moved down into the gap below it.

    Placing it midway between that defect score and the highest good score beneath it costs
    no false rejects on validation and leaves a margin for defects scoring a bit lower later.
    """
    allowed = math.floor((1.0 - target) * len(defect) + 1e-9)  # defects that may escape
    t = float(np.sort(defect)[allowed])
    below = good[good < t]
    return (t + float(below.max())) / 2 if below.size else t


def _floor6(x: float) -> float:
    """Six decimals for the card, rounded down so no validation defect drops below the threshold."""
    return math.floor(x * 1e6) / 1e6


def calibrate(
    defect_scores: np.ndarray,
    is_defect: np.ndarray,
    *,
    target_recall: float = 0.995,
    review_false_reject: float | None = None,
    fallback: bool = False,
) -> Calibration:
    """Thresholds for ``defect_scores`` (summed defect-class probability) on labelled validation.

    ``review_false_reject``: with a value r, parts fail automatically only above the score
    where at most a fraction r of good parts would fail; scores between the recall threshold
    and that one go to review. Escapes stay within the target, automatic false rejects within r.
    """
    if not 0 < target_recall <= 1:
        raise CalibrationError(f"target recall {target_recall} must lie in (0, 1]")
    scores = np.asarray(defect_scores, dtype=np.float64)
    is_defect = np.asarray(is_defect, dtype=bool)
    defect, good = scores[is_defect], scores[~is_defect]
    if defect.size == 0 or good.size == 0:
        missing = "defective" if defect.size == 0 else "good"
        msg = (f"the validation split has no {missing} images ({len(defect)} defective, {len(good)} good), "
               "so no threshold can be checked against a recall target")
        if not fallback:
            raise CalibrationError(msg + ": add labelled samples to the val split, or allow the fallback "
                                   "(--no-defects-fallback) to keep the uncalibrated 0.5 threshold")
        return Calibration(Thresholds(0.5), target_recall, None, None, 0.0, len(defect), len(good),
                           False, msg + "; kept the UNCALIBRATED fail threshold 0.5")
    notes = []
    fail = _recall_threshold(defect, good, target_recall)
    if fail > MAX_FAIL:
        fail = MAX_FAIL
        notes.append(f"threshold capped at {MAX_FAIL} (never less strict than the model's own argmax)")
    review = None
    if review_false_reject is not None:
        # lowest threshold at which no more than that share of good parts fails automatically
        allowed = math.floor(review_false_reject * len(good) + 1e-9)
        auto = float(np.sort(good)[::-1][allowed]) + 1e-6 if allowed < len(good) else 0.0
        if auto > fail:
            review, fail = fail, min(max(auto, fail), 1.0)
        else:
            notes.append("no review band needed: the recall threshold already meets the false-reject limit")
    if len(defect) < 1 / max(1e-9, 1 - target_recall):
        notes.append(f"only {len(defect)} defective validation images: a {target_recall:.1%} recall target "
                     "cannot be verified that finely; add more defect samples")
    th = Thresholds(fail=_floor6(fail), review=None if review is None else _floor6(review))
    rates = pass_fail(scores, is_defect, th.fail, th.review)
    if rates["false_reject_rate"] is not None and rates["false_reject_rate"] > 0.2:
        notes.append(f"meeting the recall target fails {rates['false_reject_rate']:.0%} of good parts: the model "
                     "does not separate good from defective well enough yet (train longer, add data, or lower "
                     "the target)")
    return Calibration(th, target_recall, rates["defect_recall"], rates["false_reject_rate"],
                       rates["review_rate"], len(defect), len(good), True, "; ".join(notes))
