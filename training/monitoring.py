"""What the line monitors need from training, stored in the card: the image-quality gate's limits
(learned from the training images, decoded as the inspector decodes them) and the validation
defect scores of good images (the reference of the score-drift check)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datasets.layout import Dataset
from inspection.errors import ImageDecodeError
from inspection.inspector import decode_for
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityError, QualityLimits, learn_limits
from inspection.spc import ScoreReference

MAX_QUALITY_IMAGES = 300  # evenly spread over the train split: the limits are percentiles, not a fit


def learn_quality(dataset: Dataset, pre: PreprocessConfig, say=print) -> QualityLimits | None:
    """Quality limits from the train split, or None (said why) when they cannot be learned."""
    samples = dataset.split("train")
    step = max(1, len(samples) // MAX_QUALITY_IMAGES)
    images = []
    for s in samples[::step][:MAX_QUALITY_IMAGES]:
        try:
            images.append(decode_for(pre, dataset.abspath(s).read_bytes())[0])
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


def score_reference(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], pass_classes: Sequence[str],
                    fail: float) -> dict | None:
    """Quantile bins of the good validation images' defect scores (under the fail threshold)."""
    if not pass_classes:
        return None
    defect = np.array([c not in pass_classes for c in classes])
    good = ~defect[labels]
    ref = ScoreReference.from_scores(probs[good][:, defect].sum(axis=1), below=fail)
    return None if ref is None else ref.to_dict()
