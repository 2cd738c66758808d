"""Domain types of the data path: Frame in, Verdict out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


def new_frame_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured or decoded image.

    ``image`` is uint8, HxW (gray) or HxWx3 (BGR, OpenCV order). ``original_size`` is the
    (height, width) of the image as captured; it differs from ``image.shape`` when the decoder
    reduced the resolution, so ROI coordinates (given in captured pixels) can be scaled.
    """

    image: np.ndarray
    source: str = ""
    frame_id: str = field(default_factory=new_frame_id)
    timestamp: float = field(default_factory=time.time)
    original_size: tuple[int, int] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise TypeError("Frame.image must be a uint8 numpy array (decode it first)")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
            raise ValueError(f"Frame.image must be HxW or HxWx3, got shape {img.shape}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) as captured."""
        return self.original_size or (int(self.image.shape[0]), int(self.image.shape[1]))


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"
    INVALID = "invalid"  # the image-quality gate refused the frame: retake it, it was not judged


@dataclass(frozen=True)
class Verdict:
    """The answer for one frame.

    ``defect_score`` is the summed probability of every class not marked as pass; the
    thresholds in the model card compare against it. ``timings_ms`` holds one entry per
    pipeline stage (decode, preprocess, inference, decision); inference is the time of the
    whole batch the frame was part of (``batch_size`` frames). An INVALID verdict (the quality
    gate refused the frame) has the failed check as ``label``, confidence 0 and a ``reason``.
    """

    frame_id: str
    source: str
    outcome: Outcome
    label: str
    confidence: float
    defect_score: float
    scores: Mapping[str, float]
    model_name: str
    model_version: str
    timings_ms: Mapping[str, float]
    batch_size: int = 1
    reason: str | None = None  # why an INVALID frame was refused (what to fix before the retake)
    regions: tuple[Any, ...] = ()  # inspection.regions.Region: where the defect map marks defects

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_id": self.frame_id,
            "source": self.source,
            "verdict": self.outcome.value,
            "label": self.label,
            "confidence": self.confidence,
            "defect_score": self.defect_score,
            "scores": dict(self.scores),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "timings_ms": dict(self.timings_ms),
            "batch_size": self.batch_size,
            "reason": self.reason,
            "regions": [r.to_dict() for r in self.regions],
        }
