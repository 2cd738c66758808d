"""Render one part: recipe + label + severity + seed -> image with its ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets.simulator.canvas import bbox_of
from datasets.simulator.defects import DEFECTS
from datasets.simulator.nuisance import Nuisance, apply_camera, jpeg_roundtrip, sample_nuisance, to_uint8
from datasets.simulator.recipes import DEFAULT_RECIPE, RECIPES, Recipe
from inspection.errors import DefectscopeError

GOOD = "good"
# Severity drawn when none is given: every defect plainly visible at 224 px. Lower it (down
# to about 0.1) for borderline parts.
DEFAULT_SEVERITY: tuple[float, float] = (0.5, 1.0)
MIN_SIZE = 32  # below this a part has no room for its features

Seed = int | Sequence[int]


class SimulationError(DefectscopeError):
    """Unknown recipe or defect, or parameters the simulator cannot render."""


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise SimulationError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}") from None


def check_severity_range(severity: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in severity)
    if not 0 < lo <= hi <= 1:
        raise SimulationError(f"severity range {lo}..{hi} is invalid: use 0 < low <= high <= 1, e.g. 0.5..1.0")
    return lo, hi


@dataclass(frozen=True, eq=False)
class SimulatedPart:
    """A rendered part and its ground truth. ``mask`` is 255 on defect pixels (all 0 for good)."""

    image: np.ndarray
    label: str
    mask: np.ndarray
    bbox: tuple[int, int, int, int] | None  # x, y, w, h of the mask
    severity: float  # 0 for good parts
    recipe: str
    nuisance: Nuisance

    @property
    def is_good(self) -> bool:
        return self.label == GOOD

    def meta(self, *, with_mask: bool = False) -> dict[str, Any]:
        """Ground truth for ``Frame.meta``; the mask only when asked (it is a full-size array)."""
        meta: dict[str, Any] = {
            "label": self.label, "bbox": self.bbox, "severity": round(self.severity, 4), "recipe": self.recipe,
        }
        if with_mask:
            meta["mask"] = self.mask
        return meta


def _streams(seed: Seed | np.random.Generator) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the scene (layout, texture, nuisances) and for the defect.

    Keeping them apart means a good part and a defective part rendered from the same seed are
    the same frame except where the defect is, and adding a defect type never reshuffles the
    nuisances of other parts.
    """
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    entropy = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    scene, defect = np.random.SeedSequence(entropy).spawn(2)
    return np.random.default_rng(scene), np.random.default_rng(defect)


class Simulator:
    """Renders parts of one recipe at one camera resolution.

    >>> part = Simulator("flange", size=(1024, 1280)).render("scratch", severity=0.8, seed=7)
    >>> part.label, part.bbox  # doctest: +SKIP
    ('scratch', (612, 233, 180, 41))
    """

    def __init__(self, recipe: str = DEFAULT_RECIPE, *, size: tuple[int, int] = (1024, 1280), color: bool = False,
                 nuisance_strength: float = 1.0) -> None:
        self.recipe = get_recipe(recipe)
        h, w = (int(v) for v in size)
        if min(h, w) < MIN_SIZE:
            raise SimulationError(f"frame size {h}x{w} (h x w) is too small: use at least {MIN_SIZE} px per side")
        self.size = (h, w)
        self.color = bool(color)
        self.nuisance_strength = float(nuisance_strength)

    @property
    def labels(self) -> tuple[str, ...]:
        return (GOOD, *self.recipe.defects)

    def check_label(self, label: str) -> str:
        if label != GOOD and label not in self.recipe.defects:
            raise SimulationError(
                f"recipe {self.recipe.name!r} has no defect {label!r}: choose one of {', '.join(self.labels)}"
            )
        return label

    def render(self, label: str = GOOD, *, severity: float | None = None, seed: Seed | np.random.Generator = 0,
               nuisance: Nuisance | None = None, light_gain: float = 1.0, jpeg: bool = True) -> SimulatedPart:
        """Render one part. ``severity`` None draws from DEFAULT_SEVERITY; ``jpeg`` False skips the
        JPEG-artefact nuisance (for callers that write the frame as JPEG at ``nuisance.jpeg_quality``)."""
        self.check_label(label)
        scene_rng, defect_rng = _streams(seed)
        drawn = sample_nuisance(scene_rng, self.nuisance_strength)
        n = (nuisance or drawn).with_light_gain(light_gain) if light_gain != 1.0 else (nuisance or drawn)
        canvas = self.recipe.build(self.size, n, scene_rng)
        if label == GOOD:
            sev = 0.0
            mask = np.zeros(self.size, np.uint8)
        else:
            if severity is None:
                sev = float(defect_rng.uniform(*DEFAULT_SEVERITY))
            elif not 0 < severity <= 1:
                raise SimulationError(f"severity {severity} is outside (0, 1]: 1 is blatant, about 0.1 borderline")
            else:
                sev = float(severity)
            mask = DEFECTS[label](canvas, defect_rng, sev)
            np.bitwise_and(mask, canvas.outline, out=mask)
        full = canvas.geom.get("full_frame")
        img = canvas.fore if full else canvas.back + canvas.alpha * (canvas.fore - canvas.back)
        img = apply_camera(img, n, scene_rng)
        if self.color:
            img = self._tint(img, canvas.alpha)
        out = to_uint8(img)
        if jpeg:
            out = jpeg_roundtrip(out, n.jpeg_quality)
        return SimulatedPart(out, label, mask, bbox_of(mask), sev, self.recipe.name, n)

    def _tint(self, img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        channels = []
        for part_gain, back_gain in zip(self.recipe.tint_part, self.recipe.tint_back, strict=True):
            channels.append(img * (back_gain + alpha * np.float32(part_gain - back_gain)))
        return np.dstack(channels)
