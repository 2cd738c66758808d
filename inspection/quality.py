"""Image-quality gate before the classifier: exposure, framing and focus, with limits learned from
the training images. A frame outside them is not judged (verdict ``invalid``: retake it).

Measured on the image the classifier sees (``Preprocessor.prepare``: ROI crop, resize to the
input size), in gray: a flaw the model cannot see at its input size cannot change its verdict,
the cost is a fraction of a millisecond, and a reduced JPEG decode and a full-size camera frame
measure alike. The measures:

* ``brightness``: mean level; ``saturated``: share of pixels at >= 250 (blown highlights).
* ``sharpness``: std of the Laplacian over std of the image: high-frequency content relative to
  contrast, so a dimmer lamp does not read as blur.
* ``part``: share of pixels above a level learned from the training images (their median Otsu
  threshold), and ``offset``: distance of those pixels' centroid from the image centre, as a share
  of the diagonal. Checked only when the training images show a part on a background
  (Otsu's separability >= 0.8 and a steady part area); a texture filling the frame skips it.

Limits are robust percentiles of the training measures widened by ``margin`` x their spread
(in log space for sharpness, a ratio). ``learn_limits`` needs at least 20 images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from inspection.errors import DefectscopeError
from inspection.preprocess import PreprocessConfig, Preprocessor

MIN_IMAGES = 20
SATURATED = 250
SEPARABLE = 0.8  # Otsu's between-class / total variance above which images show a part on a background
STEADY_PART = 0.6  # (p99 - p1) / median part area below which the framing check is on


class QualityError(DefectscopeError):
    """Quality limits cannot be learned (too few images) or read (a malformed card)."""


@dataclass(frozen=True)
class QualityLimits:
    """Stored in the model card (``card.quality``). None: that check is off."""

    brightness: tuple[float, float]
    saturated_max: float
    sharpness_min: float
    part_level: float | None = None
    part: tuple[float, float] | None = None
    offset_max: float | None = None
    images: int = 0  # how many training images the limits come from
    margin: float = 0.5

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> QualityLimits:
        try:
            d = dict(raw)
            d["brightness"] = tuple(d["brightness"])
            if d.get("part") is not None:
                d["part"] = tuple(d["part"])
            return cls(**d)
        except (KeyError, TypeError, ValueError) as exc:
            raise QualityError(f"the card's quality limits are invalid ({exc}): retrain or remove 'quality'") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QualityResult:
    ok: bool
    code: str | None  # too_dark, too_bright, saturated, part_not_found, part_off_centre, blurred
    reason: str | None
    measures: Mapping[str, float]


def _gray(prepared: np.ndarray) -> np.ndarray:
    if prepared.ndim == 3 and prepared.shape[2] == 3:
        return cv2.cvtColor(prepared, cv2.COLOR_RGB2GRAY)
    return prepared.reshape(prepared.shape[:2])


def measure(gray: np.ndarray, part_level: float | None = None) -> dict[str, float]:
    """The measures of one gray uint8 image (see the module doc)."""
    mean, std = cv2.meanStdDev(gray)
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    _, lap_std = cv2.meanStdDev(lap)
    out = {
        "brightness": float(mean[0, 0]),
        "saturated": float(np.count_nonzero(gray >= SATURATED)) / gray.size,
        "sharpness": float(lap_std[0, 0]) / (float(std[0, 0]) + 1.0),
    }
    if part_level is not None:
        mask = (gray > part_level).astype(np.uint8)
        m = cv2.moments(mask, binaryImage=True)
        h, w = gray.shape
        out["part"] = m["m00"] / gray.size
        if m["m00"] > 0:
            dx, dy = m["m10"] / m["m00"] - (w - 1) / 2, m["m01"] / m["m00"] - (h - 1) / 2
            out["offset"] = math.hypot(dx, dy) / math.hypot(w, h)
        else:
            out["offset"] = 1.0
    return out


def _otsu(gray: np.ndarray) -> tuple[float, float]:
    """(threshold, separability: between-class / total variance)."""
    level, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    above = gray > level
    w1 = float(above.mean())
    var = float(gray.var())
    if var == 0 or w1 in (0.0, 1.0):
        return float(level), 0.0
    m1, m0 = float(gray[above].mean()), float(gray[~above].mean())
    return float(level), w1 * (1 - w1) * (m1 - m0) ** 2 / var


def _range(values: np.ndarray, margin: float, floor: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [1, 99])
    spread = max(float(hi - lo), floor)
    return float(lo - margin * spread), float(hi + margin * spread)


def learn_limits(images: Iterable[np.ndarray], preprocess: PreprocessConfig, *, margin: float = 0.5) -> QualityLimits:
    """Limits from training images (decoded as the predictor decodes them: gray or BGR uint8).

    Raises QualityError with fewer than MIN_IMAGES images.
    """
    pre = Preprocessor(preprocess)
    grays = [_gray(pre.prepare(img, img.shape[:2])) for img in images]
    if len(grays) < MIN_IMAGES:
        raise QualityError(f"learning quality limits needs at least {MIN_IMAGES} training images, got {len(grays)}")
    otsu = np.array([_otsu(g) for g in grays])
    level = float(np.median(otsu[:, 0]))
    framed = float(np.median(otsu[:, 1])) >= SEPARABLE
    ms = [measure(g, level if framed else None) for g in grays]
    col = {k: np.array([m[k] for m in ms]) for k in ms[0]}
    part = offset = None
    if framed:
        p1, p50, p99 = np.percentile(col["part"], [1, 50, 99])
        framed = p50 > 0 and (p99 - p1) / p50 <= STEADY_PART
        if framed:
            lo, hi = _range(col["part"], margin, 0.02)
            part = (max(0.0, lo), min(1.0, hi))
            offset = _range(col["offset"], margin, 0.01)[1]
    lo, hi = _range(col["brightness"], margin, 8.0)
    log_sharp = np.log(np.maximum(col["sharpness"], 1e-6))
    sharp_lo = float(np.percentile(log_sharp, 1)) - margin * max(float(np.ptp(np.percentile(log_sharp, [1, 99]))),
                                                                 math.log(1.25))
    return QualityLimits(
        brightness=(max(0.0, lo), min(255.0, hi)),
        saturated_max=_range(col["saturated"], margin, 0.01)[1],
        sharpness_min=math.exp(sharp_lo),
        part_level=level if framed else None, part=part, offset_max=offset,
        images=len(grays), margin=margin,
    )


class QualityGate:
    """``gate.check(image, captured)`` -> QualityResult; the first failing check names the reason."""

    def __init__(self, limits: QualityLimits, preprocess: PreprocessConfig) -> None:
        self.limits = limits
        self.pre = Preprocessor(preprocess)

    def check(self, image: np.ndarray, captured: tuple[int, int] | None = None) -> QualityResult:
        return self.check_prepared(self.pre.prepare(image, captured))

    def check_prepared(self, prepared: np.ndarray) -> QualityResult:
        """The checks on what ``Preprocessor.prepare`` made of the frame (the predictor reuses it)."""
        lim = self.limits
        m = measure(_gray(prepared), lim.part_level)
        b, sat, sharp = m["brightness"], m["saturated"], m["sharpness"]
        checks = [
            (b < lim.brightness[0], "too_dark", f"too dark: mean level {b:.0f} is below {lim.brightness[0]:.0f}; "
             "check the lighting"),
            (b > lim.brightness[1], "too_bright", f"too bright: mean level {b:.0f} is above {lim.brightness[1]:.0f}; "
             "check the exposure"),
            (sat > lim.saturated_max, "saturated", f"over-exposed: {sat:.1%} of pixels saturated (at most "
             f"{lim.saturated_max:.1%}); check the exposure or glare"),
            (sharp < lim.sharpness_min, "blurred", f"out of focus: sharpness {sharp:.3g} is below "
             f"{lim.sharpness_min:.3g}; check the lens focus and for motion"),
        ]
        if lim.part is not None:  # after focus: blur spreads the part's outline and changes its area
            part = m["part"]
            checks.append((not lim.part[0] <= part <= lim.part[1], "part_not_found",
                           f"part not found: it covers {part:.0%} of the image, expected "
                           f"{lim.part[0]:.0%}..{lim.part[1]:.0%}; check that a part is in place and lit"))
        if lim.offset_max is not None:
            checks.append((m["offset"] > lim.offset_max, "part_off_centre",
                           f"part off centre by {m['offset']:.0%} of the image diagonal (at most "
                           f"{lim.offset_max:.0%}); check the fixture"))
        for failed, code, text in checks:
            if failed:
                return QualityResult(False, code, f"{text}, then retake (limits learned from {lim.images} "
                                     "training images)", m)
        return QualityResult(True, None, None, m)
