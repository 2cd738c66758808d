"""Defect renderers: each edits a Canvas and returns the defect's pixel mask (uint8, 255 = defect).

Sizes are in 224-px units (``canvas.u``) and grow with severity in (0, 1]: at the default
severity range every defect stays plainly visible in a 224 px image; near 0.1 a person would
call it borderline. Each defect has its own look (a bright smooth scratch, a dark branching
crack, a shaded round pit, a soft irregular stain, a hole that is not there, a bite out of
the rim), so that a classifier can tell the types apart, as an inspector would.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from datasets.simulator.canvas import Canvas, lerp, soft

_SHIFT = 4
_ONE = 1 << _SHIFT


def _pts(points: list[tuple[float, float]]) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _window(shape: tuple[int, int], mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """The padded bounding box of a drawing: effects are computed there, not on the full frame."""
    if not mask.any():
        return None
    x, y, w, h = cv2.boundingRect(mask)
    return (slice(max(0, y - pad), min(shape[0], y + h + pad)), slice(max(0, x - pad), min(shape[1], x + w + pad)))


def _add(canvas: Canvas, drawing: np.ndarray, amount: float, sigma: float) -> None:
    win = _window(canvas.shape, drawing, int(3 * sigma) + 2)
    if win is not None:
        canvas.fore[win] += np.float32(amount) * soft(drawing[win], sigma)


def _finish(canvas: Canvas, drawing: np.ndarray) -> np.ndarray:
    mask = cv2.threshold(drawing, 96, 255, cv2.THRESH_BINARY)[1]
    return cv2.bitwise_and(mask, canvas.surface)


def _curve(rng: np.random.Generator, x: float, y: float, length: float, bend: float) -> list[tuple[float, float]]:
    a = float(rng.uniform(0, 2 * math.pi))
    k = float(rng.uniform(-bend, bend)) / max(length, 1)  # curvature
    pts = []
    for t in np.linspace(-0.5, 0.5, 24):
        ang = a + k * t * length
        pts.append((x + t * length * math.cos(ang), y + t * length * math.sin(ang)))
    return pts


def scratch(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """A bright, smooth, slightly curved line: a tool or handling mark catching the light."""
    u = canvas.u
    length = lerp(18, 80, severity) * u
    width = max(1, round(lerp(0.5, 2.2, severity) * u))
    x, y = canvas.sample_point(rng, length / 2.5)
    drawing = np.zeros(canvas.shape, np.uint8)
    cv2.polylines(drawing, [_pts(_curve(rng, x, y, length, 0.6))], False, 255, width, cv2.LINE_AA, _SHIFT)
    _add(canvas, drawing, lerp(14, 85, severity), 0.25 * width)
    return _finish(canvas, drawing)


def _walk(rng: np.random.Generator, x: float, y: float, a: float, length: float,
          step: float) -> list[tuple[float, float]]:
    pts = [(x, y)]
    for _ in range(max(2, int(length / step))):
        a += float(rng.uniform(-0.6, 0.6))
        x, y = x + step * math.cos(a), y + step * math.sin(a)
        pts.append((x, y))
    return pts


def crack(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """A dark, jagged line with a branch: a fracture opening in the surface."""
    u = canvas.u
    length = lerp(16, 65, severity) * u
    width = max(1, round(lerp(0.5, 1.7, severity) * u))
    x, y = canvas.sample_point(rng, length / 2.5)
    a = float(rng.uniform(0, 2 * math.pi))
    step = max(2.0, 3.5 * u)
    main = _walk(rng, x, y, a + math.pi, length / 2, step)[::-1] + _walk(rng, x, y, a, length / 2, step)[1:]
    drawing = np.zeros(canvas.shape, np.uint8)
    cv2.polylines(drawing, [_pts(main)], False, 255, width, cv2.LINE_AA, _SHIFT)
    bx, by = main[int(rng.integers(1, len(main) - 1))]
    branch = _walk(rng, bx, by, a + float(rng.choice([-1, 1])) * float(rng.uniform(0.5, 1.1)), length * 0.35, step)
    cv2.polylines(drawing, [_pts(branch)], False, 255, max(1, width - 1), cv2.LINE_AA, _SHIFT)
    win = _window(canvas.shape, drawing, 3)
    if win is not None:
        canvas.fore[win] *= 1 - np.float32(lerp(0.25, 0.85, severity)) * soft(drawing[win], 0.3 * width)
    return _finish(canvas, drawing)


def pit(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """One to three round craters, dark inside with a lit rim: a dent, a pore or a pit."""
    u = canvas.u
    big = max(1.5, lerp(1.5, 5.5, severity) * u)
    x, y = canvas.sample_point(rng, 4 * big)
    light = float(rng.uniform(0, 2 * math.pi))
    drawing = np.zeros(canvas.shape, np.uint8)
    depth = lerp(25, 95, severity)
    for i in range(int(rng.integers(1, 4))):
        r = big if i == 0 else big * float(rng.uniform(0.45, 0.7))
        px, py = (x, y) if i == 0 else (x + float(rng.uniform(-3, 3)) * big, y + float(rng.uniform(-3, 3)) * big)
        pad = int(2 * r) + 2
        y0, x0 = max(0, int(py) - pad), max(0, int(px) - pad)
        y1, x1 = min(canvas.shape[0], int(py) + pad + 1), min(canvas.shape[1], int(px) + pad + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xx - px, yy - py
        d = np.sqrt(dx * dx + dy * dy) / r
        bowl = np.clip(1 - d * d, 0, None)
        facing = (dx * math.cos(light) + dy * math.sin(light)) / (r * np.maximum(d, 1e-3))
        rim = np.exp(-((d - 1) ** 2) / 0.08) * np.clip(facing, 0, None)
        canvas.fore[y0:y1, x0:x1] += np.float32(depth) * (0.6 * rim - bowl)
        cv2.circle(drawing, (round(px * _ONE), round(py * _ONE)), round(1.1 * r * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
    return _finish(canvas, drawing)


def stain(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """A soft-edged, irregular dark blob with a darker rim: oil, coolant residue or rust."""
    u = canvas.u
    r = max(3.0, lerp(5, 22, severity) * u)
    x, y = canvas.sample_point(rng, 1.5 * r)
    drawing = np.zeros(canvas.shape, np.uint8)
    for _ in range(int(rng.integers(4, 8))):
        ex, ey = x + float(rng.normal(0, 0.35)) * r, y + float(rng.normal(0, 0.35)) * r
        axes = (max(1, round(float(rng.uniform(0.35, 0.8)) * r * _ONE)),
                max(1, round(float(rng.uniform(0.25, 0.6)) * r * _ONE)))
        cv2.ellipse(drawing, (round(ex * _ONE), round(ey * _ONE)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1,
                    cv2.LINE_AA, _SHIFT)
    win = _window(canvas.shape, drawing, int(0.4 * r) + 2)
    if win is not None:
        blob = soft(drawing[win], 0.15 * r)
        ring = np.clip(1 - np.abs(blob - 0.5) * 4, 0, None)
        canvas.fore[win] -= np.float32(lerp(14, 60, severity)) * (blob + 0.35 * ring)
    return _finish(canvas, drawing)


def missing_hole(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """One bolt hole not drilled through: metal where the hole should be (shallow at low severity)."""
    holes = canvas.geom["holes"]
    hx, hy, hr = holes[int(rng.integers(0, len(holes)))]
    drawing = np.zeros(canvas.shape, np.uint8)
    cv2.circle(drawing, (round(hx * _ONE), round(hy * _ONE)), max(1, round(hr * _ONE)), 255, -1, cv2.LINE_AA, _SHIFT)
    win = _window(canvas.shape, drawing, 2)
    if win is not None:
        fill = np.float32(lerp(0.3, 1.0, severity**0.5))  # 0.5 -> 80% filled: plainly not a hole
        a = canvas.alpha[win]
        np.maximum(a, fill * soft(drawing[win], 0), out=a)
    return cv2.threshold(drawing, 96, 255, cv2.THRESH_BINARY)[1]


def chipped_edge(canvas: Canvas, rng: np.random.Generator, severity: float) -> np.ndarray:
    """A bite out of the outer rim, showing the belt through it, with a bright fresh fracture."""
    u = canvas.u
    cx, cy = canvas.geom["center"]
    big_r = canvas.geom["radius"]
    size = max(3.0, lerp(3, 13, severity) * u)
    a = float(rng.uniform(0, 2 * math.pi))
    px, py = cx + big_r * math.cos(a), cy + big_r * math.sin(a)
    n = 9
    poly = []
    for k in range(n):
        t = a + 2 * math.pi * k / n
        rr = size * float(rng.uniform(0.6, 1.0)) * (1.0 if k % 2 else 0.75)
        poly.append((px + rr * math.cos(t), py + rr * math.sin(t)))
    drawing = np.zeros(canvas.shape, np.uint8)
    cv2.fillPoly(drawing, [_pts(poly)], 255, cv2.LINE_AA, _SHIFT)
    mask = np.zeros(canvas.shape, np.uint8)
    win = _window(canvas.shape, drawing, int(size) + 4)
    if win is not None:
        inside = (canvas.alpha[win] > 0.5) & (drawing[win] > 96)
        mask[win][inside] = 255
        chip = soft(drawing[win], 0)
        rim = soft(cv2.dilate(drawing[win], np.ones((3, 3), np.uint8), iterations=max(1, round(0.6 * u))), 0.5)
        canvas.fore[win] += np.float32(lerp(15, 40, severity)) * np.clip(rim - chip, 0, None)
        canvas.alpha[win] *= 1 - chip
    return mask


DefectRenderer = Callable[[Canvas, np.random.Generator, float], np.ndarray]

DEFECTS: dict[str, DefectRenderer] = {
    "scratch": scratch,
    "crack": crack,
    "pit": pit,
    "stain": stain,
    "missing_hole": missing_hole,
    "chipped_edge": chipped_edge,
}
