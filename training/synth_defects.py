"""``SynthesizedDefects``: an albumentations transform that draws a defect (and its mask) on a good
training image, so a model can learn from good parts only, or from few real defects and many made ones.

It composes with the augmentation config (it runs first, so flips and turns move the defect and its
mask together) and draws only on images the caller marks clean (``clean=True``; without the flag,
only on images whose mask is empty): a real defect keeps its own look and mask. A good image that
got a defect is labelled ``ANOMALY`` (``AnomalyLabels``): the model learns "not good" without
knowing a defect's type. Which defect is drawn is chosen uniformly over ``kinds``
(``training.synth_shapes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np

from inspection.card import ANOMALY
from training.synth_shapes import PAINTERS, cutpaste, draem, painted

KINDS = ("draem", "cutpaste", "scar", *PAINTERS)
SEVERITY = (0.1, 1.0)  # painters: from borderline to plain (datasets/simulator/defects.py)
# a "defect" that changes its pixels by less than this (grey levels, on average) is no defect: labelled
# anomalous, it would teach the model to fail good parts; it is drawn again, up to TRIES times
MIN_VISIBLE = 4.0
TRIES = 3


class SynthesizedDefects(A.DualTransform):
    """With probability ``p``, one synthesized defect on a clean image; its mask is OR-ed into the mask.

    ``textures``: other good images whose windows fill DRAEM regions (the training split's own).
    """

    def __init__(self, kinds: Sequence[str] = KINDS, textures: Sequence[np.ndarray] = (), p: float = 0.5,
                 severity: tuple[float, float] = SEVERITY) -> None:
        super().__init__(p=p)
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise ValueError(f"synthesized defect kinds must be among {KINDS}, not {list(kinds)}")
        self.kinds, self.textures, self.severity = tuple(kinds), textures, severity

    @property
    def targets_as_params(self) -> list[str]:
        return ["image", "mask"]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        mask = data.get("mask")
        if not data.get("clean", mask is None or not np.any(mask)):
            return {"synth": None}
        image = data["image"]
        flat = image.ndim == 2
        img = image[:, :, None] if flat else image
        rng = self.random_generator
        for _ in range(TRIES):
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            if kind == "draem":
                out, drawn = draem(img, rng, self.textures)
            elif kind in ("cutpaste", "scar"):
                out, drawn = cutpaste(img, rng, scar=kind == "scar")
            else:
                out, drawn = painted(kind, img, rng, float(rng.uniform(*self.severity)))
            inside = drawn > 0
            if inside.any() and np.abs(out[inside].astype(np.int16) - img[inside]).mean() >= MIN_VISIBLE:
                return {"synth": (out[:, :, 0] if flat else out, drawn)}
        return {"synth": None}

    def apply(self, img: np.ndarray, synth: Any = None, **params: Any) -> np.ndarray:
        return img if synth is None else synth[0]

    def apply_to_mask(self, mask: np.ndarray, synth: Any = None, **params: Any) -> np.ndarray:
        return mask if synth is None else np.maximum(mask, synth[1].astype(mask.dtype))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("kinds", "severity")


@dataclass(frozen=True)
class AnomalyLabels:
    """Which training labels are clean (a defect may be drawn on them) and what a drawn one becomes."""

    pass_index: frozenset[int]
    anomaly: int

    @classmethod
    def of(cls, classes: Sequence[str], pass_classes: Sequence[str]) -> AnomalyLabels:
        return cls(frozenset(i for i, c in enumerate(classes) if c in pass_classes), list(classes).index(ANOMALY))

    def clean(self, label: int) -> bool:
        return int(label) in self.pass_index

    def after(self, label: int, mask: np.ndarray | None) -> int:
        return self.anomaly if self.clean(label) and mask is not None and bool(mask.any()) else int(label)

    def expected_counts(self, counts: np.ndarray, p: float) -> np.ndarray:
        """Class counts as training will see them on average: a share ``p`` of clean images turns anomalous."""
        out = counts.astype(np.float64)
        clean = sorted(self.pass_index)
        out[self.anomaly] += p * out[clean].sum()
        out[clean] *= 1 - p
        return out
