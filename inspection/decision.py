"""Class probabilities -> pass / fail / review, from the card's calibrated thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inspection.card import ModelCard
from inspection.types import Outcome


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
        self._defect = np.array([c not in card.pass_classes for c in card.classes])

    def defect_scores(self, probs: np.ndarray) -> np.ndarray:
        """Probability mass on defect classes, per row of an (N, C) array."""
        return probs[:, self._defect].sum(axis=1)

    def __call__(self, probs: np.ndarray) -> Decision:
        """Decide one (C,) row of probabilities.

        Every class not marked as pass is a defect, so two defects each at 0.3 fail a 0.5
        threshold together even though a pass class has the single highest score. The label
        is the most likely defect class for fail/review, the most likely pass class for pass.
        """
        defect = float(probs[self._defect].sum())
        t = self.thresholds
        if defect >= t.fail:
            outcome = Outcome.FAIL
        elif t.review is not None and defect >= t.review:
            outcome = Outcome.REVIEW
        else:
            outcome = Outcome.PASS
        pool = self._defect if outcome is not Outcome.PASS else ~self._defect
        if not pool.any():  # a model with no pass class (pure defect typing)
            pool = np.ones_like(self._defect)
        idx = int(np.flatnonzero(pool)[np.argmax(probs[pool])])
        return Decision(outcome, self.classes[idx], float(probs[idx]), defect)
