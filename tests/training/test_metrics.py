from __future__ import annotations

import numpy as np
import pytest

from training.metrics import classification_metrics, pass_fail, roc_auc


def test_roc_auc_by_pair_counting() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.random(60), 1)  # many ties
    pos = rng.random(60) < 0.4
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in s[pos] for b in s[~pos]]
    assert roc_auc(s, pos) == pytest.approx(np.mean(pairs))
    assert roc_auc(s, np.zeros(60, bool)) is None


def test_per_class_confusion_and_pass_fail() -> None:
    classes = ("good", "scratch", "pit")
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    labels = np.array([0, 1, 1, 2, 0])
    m = classification_metrics(probs, labels, classes, ("good",), fail=0.5)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"] == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert m["per_class"]["pit"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    pf = m["pass_fail"]
    assert (pf["escapes"], pf["defects"], pf["false_rejects"], pf["good"]) == (1, 3, 1, 2)  # row 1 escapes


def test_review_parts_are_neither_escape_nor_false_reject() -> None:
    s = np.array([0.2, 0.4, 0.8, 0.4])
    d = np.array([True, True, True, False])
    pf = pass_fail(s, d, fail=0.5, review=0.3)
    assert (pf["escapes"], pf["false_rejects"], pf["review_rate"]) == (1, 0, 0.5)
