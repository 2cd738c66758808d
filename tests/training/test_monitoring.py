"""What training stores for the line monitors: quality limits from the train split and the
validation score reference."""

from __future__ import annotations

import numpy as np

from datasets.synth import synthesize
from inspection.predictor import Preparer
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityGate
from monitoring.spc import ScoreReference
from training.monitoring import learn_quality, score_reference


def test_quality_limits_come_from_the_train_split_decoded_like_the_predictor(tmp_path):
    ds = synthesize(tmp_path / "ds", n=40, size=(101, 127), seed=3, workers=1)
    pre = PreprocessConfig(input_size=(33, 41))
    said: list[str] = []
    limits = learn_quality(ds, pre, said.append)
    assert limits is not None and limits.images == len(ds.split("train")) and "framing check on" in said[0]
    gate = QualityGate(limits, pre)
    frames = [Preparer(pre).decode(ds.abspath(s).read_bytes()) for s in ds.split("test")]
    assert sum(gate.check(img, cap).ok for img, cap, _ in frames) >= len(frames) - 1
    few = synthesize(tmp_path / "few", n=8, size=(101, 127), workers=1, splits=(1, 0, 0))
    assert learn_quality(few, pre, said.append) is None
    assert "at least 20" in said[-1]


def test_score_reference_uses_good_validation_images_below_the_fail_threshold():
    rng = np.random.default_rng(0)
    classes, labels = ("good", "scratch"), np.array([0] * 120 + [1] * 40)
    defect = np.concatenate([rng.beta(1, 30, 120), rng.beta(30, 1, 40)])
    probs = np.stack([1 - defect, defect], axis=1)
    is_defect = labels == classes.index("scratch")
    ref = ScoreReference.from_dict(score_reference(probs[:, 1], is_defect, fail=0.5))
    assert ref is not None and ref.n == 120 and ref.below == 0.5 and max(ref.edges) < 0.2
    assert score_reference(probs[:, 1], np.ones_like(is_defect), fail=0.5) is None  # no good images
