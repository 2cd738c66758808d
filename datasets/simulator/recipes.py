"""Product recipes: what a good part looks like, with its position and texture varying part to part.

``flange``: a turned steel flange (centre bore, six bolt holes, chamfered edges) lying on a
dark conveyor belt, seen from above, the classic round machined part of a turning cell.
``steel``: a close-up of hot-rolled steel strip filling the frame (rolling streaks, mottling),
as on a strip-mill surface inspection system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.simulator.canvas import Canvas, centred_grid, noise_view, polar, smooth_noise, unit
from datasets.simulator.nuisance import Nuisance

_SHIFT = 4  # sub-pixel drawing: coordinates are multiplied by 2**_SHIFT
_ONE = 1 << _SHIFT


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x * _ONE), round(y * _ONE)


def _disk(img: np.ndarray, cx: float, cy: float, r: float, value: int, thickness: int = -1) -> None:
    cv2.circle(img, _pt(cx, cy), max(1, round(r * _ONE)), value, thickness, cv2.LINE_AA, _SHIFT)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    defects: tuple[str, ...]
    tint_part: tuple[float, float, float]  # B, G, R gains for colour frames
    tint_back: tuple[float, float, float]
    fixture: str | None = None  # how a model finds the part in the frame (inspection.fixture), if it can

    def build(self, shape: tuple[int, int], n: Nuisance, rng: np.random.Generator) -> Canvas:
        raise NotImplementedError


class Flange(Recipe):
    def build(self, shape: tuple[int, int], n: Nuisance, rng: np.random.Generator) -> Canvas:
        h, w = shape
        u, s = unit(shape), min(h, w)
        big_r = 0.40 * s * (1 + float(rng.uniform(-0.02, 0.02)))
        cx, cy = w / 2 + n.shift[0] * 0.06 * s, h / 2 + n.shift[1] * 0.06 * s
        bore_r, ring_r, hole_r = 0.30 * big_r, 0.66 * big_r, 0.075 * big_r
        rot = math.radians(n.rotation)
        holes = [(cx + ring_r * math.cos(rot + k * math.pi / 3), cy + ring_r * math.sin(rot + k * math.pi / 3), hole_r)
                 for k in range(6)]

        # surface: turned metal, its sheen following the turning direction, and part-to-part texture
        # smooth parts of the shading are computed at 1/8 scale and resized: most of a frame's cost otherwise
        sh, sw = max(2, h // 8), max(2, w // 8)
        _, theta = polar((sh, sw), (cx + 0.5) / 8 - 0.5, (cy + 0.5) / 8 - 0.5)
        low = float(rng.uniform(5, 14)) * np.cos(2 * (theta - float(rng.uniform(0, math.pi))))
        low += float(rng.uniform(1.5, 4)) * smooth_noise((sh, sw), rng, s / 64)
        low += float(rng.uniform(140, 172))
        fore = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
        period = float(rng.uniform(0.006, 0.012)) * big_r
        phase = float(rng.uniform(0, 6.3))
        if period >= 3:  # turning marks: fine concentric rings, only where the camera resolves them
            xs, ys = centred_grid(h, w)
            r = cv2.magnitude(xs - np.float32(cx), ys - np.float32(cy))
            r *= np.float32(2 * math.pi / period)
            r += np.float32(phase)
            fore += float(rng.uniform(2, 5)) * np.sin(r)
        fore += float(rng.uniform(1.5, 3)) * noise_view(shape, rng, key=2)
        chamfers = np.zeros(shape, np.uint8)
        edge = max(1, round(0.012 * big_r))
        _disk(chamfers, cx, cy, big_r - edge / 2, 255, edge)
        _disk(chamfers, cx, cy, bore_r + edge / 2, 255, edge)
        for hx, hy, hr in holes:
            _disk(chamfers, hx, hy, hr + edge / 2, 180, edge)
        fore += chamfers.astype(np.float32) * np.float32(float(rng.uniform(25, 40)) / 255)

        back = 3 * smooth_noise(shape, rng, 6 * u)
        back += float(rng.uniform(45, 75))
        back += 4 * noise_view(shape, rng, key=3)

        cover = np.zeros(shape, np.uint8)
        _disk(cover, cx, cy, big_r, 255)
        _disk(cover, cx, cy, bore_r, 0)
        for hx, hy, hr in holes:
            _disk(cover, hx, hy, hr, 0)
        alpha = cover.astype(np.float32) * np.float32(1 / 255)
        surface = cv2.threshold(cover, 127, 255, cv2.THRESH_BINARY)[1]
        outline = np.zeros(shape, np.uint8)
        cv2.circle(outline, _pt(cx, cy), round(big_r * _ONE), 255, -1, cv2.LINE_8, _SHIFT)
        cv2.circle(outline, _pt(cx, cy), round(bore_r * _ONE), 0, -1, cv2.LINE_8, _SHIFT)

        def sample_point(g: np.random.Generator, margin: float) -> tuple[float, float]:
            lo, hi = bore_r + margin, max(bore_r + margin + 1, big_r - margin)
            for _ in range(64):
                rr = math.sqrt(float(g.uniform(lo * lo, hi * hi)))
                a = float(g.uniform(0, 2 * math.pi))
                x, y = cx + rr * math.cos(a), cy + rr * math.sin(a)
                if all(math.hypot(x - hx, y - hy) > hr + margin for hx, hy, hr in holes):
                    return x, y
            a = rot + math.pi / 6  # between two holes: always clear
            return cx + ring_r * math.cos(a), cy + ring_r * math.sin(a)

        geom = {"center": (cx, cy), "radius": big_r, "bore_radius": bore_r, "holes": holes}
        return Canvas(fore, back, alpha, surface, outline, sample_point, geom)


class SteelStrip(Recipe):
    def build(self, shape: tuple[int, int], n: Nuisance, rng: np.random.Generator) -> Canvas:
        h, w = shape
        u, f = unit(shape), 4
        small = rng.standard_normal((max(2, h // f), max(2, w // f))).astype(np.float32)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(0.5, 14 * u / f), sigmaY=max(0.3, 0.5 * u / f))
        small /= float(small.std()) + 1e-6
        tilt = (n.rotation % 8) - 4  # rolling direction within +-4 degrees of horizontal
        m = cv2.getRotationMatrix2D((small.shape[1] / 2, small.shape[0] / 2), tilt, 1.0)
        small = cv2.warpAffine(small, m, (small.shape[1], small.shape[0]), borderMode=cv2.BORDER_REFLECT)
        fore = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        fore *= float(rng.uniform(3, 7))
        fore += float(rng.uniform(105, 150))
        fore += float(rng.uniform(3, 7)) * smooth_noise(shape, rng, min(h, w) / 5)
        fore += float(rng.uniform(2, 4)) * noise_view(shape, rng, key=2)
        full = np.full(shape, 255, np.uint8)

        def sample_point(g: np.random.Generator, margin: float) -> tuple[float, float]:
            mx, my = min(margin, w / 3), min(margin, h / 3)
            return float(g.uniform(mx, w - mx)), float(g.uniform(my, h - my))

        return Canvas(fore, np.zeros(shape, np.float32), np.ones(shape, np.float32), full, full, sample_point,
                      {"full_frame": True})


SURFACE_DEFECTS = ("scratch", "crack", "pit", "stain")

RECIPES: dict[str, Recipe] = {
    "flange": Flange(
        "flange", "turned steel flange with a bore and six bolt holes on a conveyor belt",
        (*SURFACE_DEFECTS, "missing_hole", "chipped_edge"), (0.97, 1.0, 1.03), (1.12, 1.06, 0.78),
        fixture="bright",
    ),
    "steel": SteelStrip(
        "steel", "hot-rolled steel strip surface filling the frame",
        SURFACE_DEFECTS, (1.04, 1.0, 0.96), (1.0, 1.0, 1.0),
    ),
}
DEFAULT_RECIPE = "flange"
