"""Defects synthesized on a good image, each returning (image, 0/1 mask): what a model trained on good
parts only learns "not good" from.

- ``draem``: a Perlin-noise-shaped region filled with texture from another good image or with noise,
  blended at a random opacity (Zavrtanik et al., "DRAEM", ICCV 2021: the anomaly is anything that is
  not the part's own texture at that place);
- ``cutpaste`` and ``scar``: a patch of the image itself, jittered, pasted elsewhere; a scar is a thin
  turned strip (Li et al., "CutPaste", CVPR 2021: local irregularities in the part's own texture);
- ``scratch``, ``crack``, ``pit``, ``stain``: the simulator's painters, drawn on the image as if it
  were the simulator's canvas (the looks inspectors name).

Every function takes and returns HxWxC uint8 (C = 1 or 3) and draws only with the generator it is
given, so a training run stays reproducible. Perlin noise is written here (30 lines after DRAEM's
reference ``rand_perlin_2d_np``): no maintained package with wheels for every platform provides it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from datasets.simulator.canvas import Canvas
from datasets.simulator.defects import DEFECTS

PAINTERS = ("scratch", "crack", "pit", "stain")
MAX_COVER = 0.4  # a synthesized region covers at most this share of the image (redrawn otherwise)


def perlin(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Gradient noise of ``shape`` with ``res`` (rows, cols) lattice cells, values about [-1, 1]."""
    h, w = shape
    angles = rng.uniform(0, 2 * math.pi, (res[0] + 1, res[1] + 1))
    gy, gx = np.sin(angles), np.cos(angles)
    ys, xs = np.linspace(0, res[0], h, endpoint=False), np.linspace(0, res[1], w, endpoint=False)
    yi, xi = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - yi)[:, None], (xs - xi)[None, :]

    def corner(oy: int, ox: int) -> np.ndarray:
        idx = np.ix_(yi + oy, xi + ox)
        return gy[idx] * (fy - oy) + gx[idx] * (fx - ox)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(fx), fade(fy)
    top = corner(0, 0) + u * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + u * (corner(1, 1) - corner(1, 0))
    return (math.sqrt(2) * (top + v * (bottom - top))).astype(np.float32)


def _region(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray | None:
    """A DRAEM anomaly region: thresholded Perlin noise at random lattice sizes, turned, not too large."""
    h, w = shape
    for _ in range(4):
        res = (2 ** int(rng.integers(0, 6)), 2 ** int(rng.integers(0, 6)))
        noise = perlin((h, w), res, rng)
        angle = float(rng.uniform(-90, 90))
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        noise = cv2.warpAffine(noise, turn, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        mask = (noise > 0.5).astype(np.uint8)
        if 0 < mask.mean() <= MAX_COVER:
            return mask
    return None


def _texture(image: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """What fills a DRAEM region: a window of another good image (turned, re-lit), or noise."""
    h, w, c = image.shape
    if others and rng.random() < 0.5:
        src = others[int(rng.integers(len(others)))]
        src = src if src.ndim == 3 else src[:, :, None]
        if src.shape[0] < h or src.shape[1] < w:
            src = cv2.resize(src, (max(w, src.shape[1]), max(h, src.shape[0]))).reshape(
                max(h, src.shape[0]), max(w, src.shape[1]), -1)
        y, x = int(rng.integers(0, src.shape[0] - h + 1)), int(rng.integers(0, src.shape[1] - w + 1))
        tex = np.rot90(src[y : y + h, x : x + w], int(rng.integers(0, 4)) if h == w else 2 * int(rng.integers(0, 2)))
        tex = tex.astype(np.float32) * float(rng.uniform(0.6, 1.4)) + float(rng.uniform(-40, 40))
        tex = tex[:, :, :c] if tex.shape[2] >= c else np.repeat(tex[:, :, :1], c, axis=2)
    else:
        res = (2 ** int(rng.integers(2, 6)),) * 2
        lo, hi = sorted(rng.uniform(0, 255, 2))
        tex = (lo + (hi - lo) * (perlin((h, w), res, rng) + 1) / 2)[:, :, None]
        tex = tex + rng.normal(0, float(rng.uniform(0, 12)), (h, w, 1)).astype(np.float32)
        tex = np.repeat(tex, c, axis=2)
    return np.ascontiguousarray(tex, dtype=np.float32)


def draem(image: np.ndarray, rng: np.random.Generator,
          others: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    mask = _region(image.shape[:2], rng)
    if mask is None:
        return image, np.zeros(image.shape[:2], np.uint8)
    beta = float(rng.uniform(0, 0.8))  # the image's own share inside the region (DRAEM's opacity)
    m = mask[:, :, None].astype(np.float32)
    img = image.astype(np.float32)
    out = img * (1 - m) + m * ((1 - beta) * _texture(image, others, rng) + beta * img)
    return np.clip(out, 0, 255).astype(np.uint8), mask


def cutpaste(image: np.ndarray, rng: np.random.Generator, scar: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A patch of the image (area 2-15 %, aspect 0.3-3.3; a scar: a thin strip turned up to 45 degrees),
    brightness-jittered, pasted at another place."""
    h, w = image.shape[:2]
    k = min(h, w) / 256  # CutPaste's scar sizes are for 256-px images
    if scar:
        ph, pw = max(6, round(rng.uniform(10, 25) * k * 2)), max(2, round(rng.uniform(2, 16) * k))
        angle = float(rng.uniform(-45, 45))
    else:
        area = rng.uniform(0.02, 0.15) * h * w
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        ph = min(h - 2, max(4, round(math.sqrt(area * aspect))))
        pw = min(w - 2, max(4, round(math.sqrt(area / aspect))))
        angle = 0.0
    sy, sx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    ty, tx = float(rng.uniform(ph / 2, h - ph / 2)), float(rng.uniform(pw / 2, w - pw / 2))
    move = cv2.getRotationMatrix2D((sx + pw / 2, sy + ph / 2), angle, 1.0)
    move[:, 2] += (tx - sx - pw / 2, ty - sy - ph / 2)
    rect = np.zeros((h, w), np.uint8)
    rect[sy : sy + ph, sx : sx + pw] = 1
    mask = cv2.warpAffine(rect, move, (w, h), flags=cv2.INTER_NEAREST)
    patch = cv2.warpAffine(image, move, (w, h), flags=cv2.INTER_LINEAR).reshape(image.shape).astype(np.float32)
    patch = patch * float(rng.uniform(0.8, 1.2)) + float(rng.choice([-1, 1])) * float(rng.uniform(5, 30))
    out = np.where(mask[:, :, None] > 0, np.clip(patch, 0, 255), image).astype(np.uint8)
    return out, mask


def painted(name: str, image: np.ndarray, rng: np.random.Generator, severity: float) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's ``name`` painter on this image: its grey-level change added to every channel."""
    gray = image.astype(np.float32).mean(axis=2)
    h, w = gray.shape
    everywhere = np.full((h, w), 255, np.uint8)

    def point(r: np.random.Generator, margin: float) -> tuple[float, float]:
        my, mx = min(margin, 0.45 * h), min(margin, 0.45 * w)
        return float(r.uniform(mx, w - mx)), float(r.uniform(my, h - my))

    canvas = Canvas(gray.copy(), gray, np.ones((h, w), np.float32), everywhere, everywhere, point)
    drawn = DEFECTS[name](canvas, rng, severity)
    out = np.clip(image.astype(np.float32) + (canvas.fore - gray)[:, :, None], 0, 255).astype(np.uint8)
    return out, (drawn > 0).astype(np.uint8)
