"""The drawing surface a recipe builds and defects edit, plus cached noise and coordinate grids.

A frame is composed late: ``back`` (conveyor or nothing) and ``fore`` (the part's surface,
full frame) are blended by ``alpha`` (part coverage). Surface defects edit ``fore``; defects
that change the part's outline (a chipped edge, a missing hole) edit ``alpha``. Everything is
float32 in grey levels (0-255) and vectorised: no per-pixel Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

# One pixel on the long side of a 224 px training image: defect sizes are given in these units
# so that a defect of default severity stays visible after the frame is downscaled for a CNN.
TRAINING_LONG_SIDE = 224

PointSampler = Callable[[np.random.Generator, float], tuple[float, float]]


@dataclass
class Canvas:
    fore: np.ndarray  # float32 HxW, the part's surface
    back: np.ndarray  # float32 HxW, what is seen where there is no part
    alpha: np.ndarray  # float32 HxW in [0, 1], part coverage
    surface: np.ndarray  # uint8 HxW, 255 where surface defects may lie (the part, minus holes)
    outline: np.ndarray  # uint8 HxW, 255 inside the part's outer outline (holes included): defect masks lie here
    sample_point: PointSampler  # (rng, margin_px) -> a point well inside the surface
    geom: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.fore.shape[0]), int(self.fore.shape[1])

    @property
    def u(self) -> float:
        return unit(self.shape)


def unit(shape: tuple[int, int]) -> float:
    """Pixels per pixel of a 224 px (long side) training image."""
    return max(shape) / TRAINING_LONG_SIDE


def lerp(lo: float, hi: float, t: float) -> float:
    return lo + (hi - lo) * t


_NOISE_PAD = 64


@lru_cache(maxsize=8)
def _noise_tile(h: int, w: int, key: int) -> np.ndarray:
    tile = np.random.default_rng([0x5EED, h, w, key]).standard_normal((h + _NOISE_PAD, w + _NOISE_PAD), np.float32)
    tile.flags.writeable = False
    return tile


def noise_view(shape: tuple[int, int], rng: np.random.Generator, key: int = 0) -> np.ndarray:
    """Unit Gaussian noise of ``shape``: a random window of a cached tile.

    Drawing 1.3 M normals per frame costs more than the rest of a frame; a window at a random
    offset (and a random flip) of a fixed tile is as good for sensor noise and grain, and the
    result still depends only on the seed.
    """
    h, w = shape
    tile = _noise_tile(h, w, key)
    oy, ox = (int(v) for v in rng.integers(0, _NOISE_PAD + 1, size=2))
    view = tile[oy : oy + h, ox : ox + w]
    flip = int(rng.integers(0, 4))
    if flip & 1:
        view = view[::-1]
    if flip & 2:
        view = view[:, ::-1]
    return view


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cell: float) -> np.ndarray:
    """Low-frequency noise (blobs about ``cell`` pixels wide), zero mean, unit-ish amplitude."""
    h, w = shape
    gh, gw = max(2, round(h / cell) + 2), max(2, round(w / cell) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@lru_cache(maxsize=8)
def centred_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of every pixel (float32), shared and read-only."""
    xs = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    ys = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    return xs, ys


def polar(shape: tuple[int, int], cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Radius and angle (radians) of every pixel around (cx, cy)."""
    xs, ys = centred_grid(*shape)
    return cv2.cartToPolar(xs - np.float32(cx), ys - np.float32(cy))


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the non-zero pixels, or None when there are none."""
    if not mask.any():
        return None
    x, y, w, h = cv2.boundingRect(mask)
    return int(x), int(y), int(w), int(h)


def soft(mask_u8: np.ndarray, sigma: float) -> np.ndarray:
    """A 0-255 drawing as a 0-1 float32 with softened edges."""
    out = mask_u8.astype(np.float32) * np.float32(1 / 255)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out
