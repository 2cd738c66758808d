import numpy as np
import pytest

from inspection.card import ModelCard, Thresholds
from inspection.decision import DecisionRule
from inspection.preprocess import PreprocessConfig
from inspection.types import Outcome

PRE = PreprocessConfig(input_size=(8, 8))


def rule(classes, pass_classes, fail, review=None) -> DecisionRule:
    card = ModelCard(name="t", version="1", arch="resnet18", classes=classes, pass_classes=pass_classes,
                     preprocess=PRE, thresholds=Thresholds(fail=fail, review=review))
    return DecisionRule(card)


BINARY = (("good", "defect"), ("good",))
MULTI = (("good", "scratch", "dent", "stain"), ("good",))


@pytest.mark.parametrize(
    "classes, probs, fail, review, outcome, label",
    [
        (BINARY, [0.9, 0.1], 0.5, None, Outcome.PASS, "good"),
        (BINARY, [0.5, 0.5], 0.5, None, Outcome.FAIL, "defect"),  # exactly at the fail threshold fails
        (BINARY, [0.5000001, 0.4999999], 0.5, None, Outcome.PASS, "good"),
        (BINARY, [0.6, 0.4], 0.5, 0.3, Outcome.REVIEW, "defect"),  # inside the review band
        (BINARY, [0.7, 0.3], 0.5, 0.3, Outcome.REVIEW, "defect"),  # exactly at the review threshold
        (BINARY, [0.71, 0.29], 0.5, 0.3, Outcome.PASS, "good"),
        (BINARY, [0.0, 1.0], 1.0, None, Outcome.FAIL, "defect"),
        # multi-class: defects add up; the pass class has the single top score but still fails
        (MULTI, [0.40, 0.30, 0.25, 0.05], 0.5, None, Outcome.FAIL, "scratch"),
        (MULTI, [0.70, 0.05, 0.20, 0.05], 0.5, 0.25, Outcome.REVIEW, "dent"),
        (MULTI, [0.90, 0.02, 0.03, 0.05], 0.5, 0.25, Outcome.PASS, "good"),
        (MULTI, [0.0, 0.1, 0.1, 0.8], 0.995, None, Outcome.FAIL, "stain"),
    ],
)
def test_decision_table(classes, probs, fail, review, outcome, label):
    d = rule(*classes, fail, review)(np.array(probs, np.float64))
    assert (d.outcome, d.label) == (outcome, label)
    assert d.defect_score == pytest.approx(1.0 - probs[0])
    assert d.confidence == pytest.approx(max(p for c, p in zip(classes[0], probs, strict=True) if c == label))


def test_model_without_a_pass_class_always_names_the_defect():
    r = rule(("crazing", "inclusion", "patches"), (), 0.5)
    d = r(np.array([0.2, 0.7, 0.1]))
    assert (d.outcome, d.label) == (Outcome.FAIL, "inclusion")


def test_two_pass_classes_share_the_pass_mass():
    r = rule(("good", "good_rotated", "crack"), ("good", "good_rotated"), 0.5)
    d = r(np.array([0.3, 0.3, 0.4]))
    assert d.outcome is Outcome.PASS and d.defect_score == pytest.approx(0.4)
    assert np.allclose(r.defect_scores(np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])), [0.4, 0.8])
