"""Class probabilities -> pass / fail / review, from the card's calibrated thresholds.

The one definition of which classes are defects and of the fail/review comparison: the
service, QA runs, evaluation, calibration and the golden-set comparison all call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inspection.card import ModelCard, Thresholds
from inspection.types import Outcome


def defect_mask(classes: Sequence[str], pass_classes: Sequence[str]) -> np.ndarray:
    """Per class: True when it is a defect (every class not marked as pass)."""
    return np.array([c not in pass_classes for c in classes], dtype=bool)


def defect_scores(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Probability mass on defect classes, per row of an (N, C) array."""
    return probs[:, mask].sum(axis=1)


def outcomes(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """"fail" at or above the fail threshold, "review" in the band below it, else "pass" (per score)."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.full(scores.shape, Outcome.PASS.value, dtype=object)
    if thresholds.review is not None:
        out[scores >= thresholds.review] = Outcome.REVIEW.value
    out[scores >= thresholds.fail] = Outcome.FAIL.value
    return out


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    label: str
    confidence: float
    defect_score: float


class DecisionRule:
    """Precomputes the defect-class mask once per card, then decides a row at a time."""

    def __init__(self, card: ModelCard) -> None:
        self.classes = card.classes
        self.thresholds = card.thresholds
        self._defect = defect_mask(card.classes, card.pass_classes)

    def defect_scores(self, probs: np.ndarray) -> np.ndarray:
        return defect_scores(probs, self._defect)

    def __call__(self, probs: np.ndarray) -> Decision:
        """Decide one (C,) row of probabilities.

        Every class not marked as pass is a defect, so two defects each at 0.3 fail a 0.5
        threshold together even though a pass class has the single highest score. The label
        is the most likely defect class for fail/review, the most likely pass class for pass.
        """
        defect = float(probs[self._defect].sum())
        outcome = Outcome(outcomes(np.array([defect]), self.thresholds)[0])
        pool = self._defect if outcome is not Outcome.PASS else ~self._defect
        if not pool.any():  # a model with no pass class (pure defect typing)
            pool = np.ones_like(self._defect)
        idx = int(np.flatnonzero(pool)[np.argmax(probs[pool])])
        return Decision(outcome, self.classes[idx], float(probs[idx]), defect)
