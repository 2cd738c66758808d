"""What the line monitors need from training, stored in the card: the image-quality gate's limits
(learned from the training images, decoded as the predictor decodes them) and the validation
defect scores of good images (the reference of the score-drift check)."""

from __future__ import annotations

import numpy as np

from datasets.layout import Dataset
from inspection.errors import ImageDecodeError
from inspection.predictor import Preparer
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityError, QualityLimits, learn_limits
from monitoring.spc import ScoreReference

MAX_QUALITY_IMAGES = 300  # evenly spread over the train split: the limits are percentiles, not a fit


def learn_quality(dataset: Dataset, pre: PreprocessConfig, say=print) -> QualityLimits | None:
    """Quality limits from the train split, or None (said why) when they cannot be learned."""
    preparer = Preparer(pre)  # decoded as the line decodes: the gate's limits are learned on its pixels
    samples = dataset.split("train")
    step = max(1, len(samples) // MAX_QUALITY_IMAGES)
    images = []
    for s in samples[::step][:MAX_QUALITY_IMAGES]:
        try:
            images.append(preparer.decode(dataset.abspath(s).read_bytes())[0])
        except (OSError, ImageDecodeError):
            continue  # the data loader already listed unreadable files
    try:
        limits = learn_limits(images, pre)
    except QualityError as exc:
        say(f"[yellow]no image-quality gate[/]: {exc}")
        return None
    framing = "on" if limits.part is not None else "off (no part on a background in the images)"
    say(f"image-quality gate learned from {limits.images} training images: brightness "
        f"{limits.brightness[0]:.0f}..{limits.brightness[1]:.0f}, sharpness >= {limits.sharpness_min:.3g}, "
        f"framing check {framing}")
    return limits


def score_reference(scores: np.ndarray, is_defect: np.ndarray, fail: float) -> dict | None:
    """Quantile bins of the good validation images' defect scores (under the fail threshold); a
    good-only model's val, good parts only, gets one too."""
    good = ~np.asarray(is_defect, dtype=bool)
    if not good.any():
        return None
    ref = ScoreReference.from_scores(np.asarray(scores)[good], below=fail)
    return None if ref is None else ref.to_dict()
