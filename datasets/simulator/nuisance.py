"""Nuisances: everything that varies between frames of good parts and must NOT be called a defect.

Position and rotation jitter and texture variation are applied by the recipe when it lays out
the part; this module owns the camera side: lighting level and gradient, vignetting, dust on
the lens or the part, defocus or motion blur, sensor noise and JPEG artefacts. Each is drawn
from ``sample_nuisance`` and kept well below what a defect of default severity looks like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from datasets.simulator.canvas import noise_view, unit


@dataclass(frozen=True)
class Nuisance:
    shift: tuple[float, float] = (0.0, 0.0)  # part offset, fraction of the recipe's allowed jitter (-1..1)
    rotation: float = 0.0  # degrees
    light_level: float = 1.0  # global gain
    gradient: float = 0.0  # relative brightness change across the frame
    gradient_angle: float = 0.0  # radians
    vignette: float = 0.0  # relative darkening in the corners
    noise_sigma: float = 0.0  # grey levels
    defocus: float = 0.0  # Gaussian sigma, in 224-px units
    motion: float = 0.0  # motion blur length, in 224-px units
    motion_angle: float = 0.0  # degrees
    dust: int = 0  # number of dust specks
    jpeg_quality: int = 95

    def with_light_gain(self, gain: float) -> Nuisance:
        return replace(self, light_level=self.light_level * gain)


NO_NUISANCE = Nuisance()


def sample_nuisance(rng: np.random.Generator, strength: float = 1.0) -> Nuisance:
    """Random nuisances; ``strength`` 0 gives a clean frame, 1 the default spread."""
    s = float(strength)
    blur_kind = int(rng.integers(0, 3))  # none, defocus, motion
    return Nuisance(
        shift=(float(rng.uniform(-1, 1)) * s, float(rng.uniform(-1, 1)) * s),
        rotation=float(rng.uniform(0, 360)),
        light_level=float(1 + rng.uniform(-0.22, 0.18) * s),
        gradient=float(rng.uniform(0, 0.25) * s),
        gradient_angle=float(rng.uniform(0, 2 * math.pi)),
        vignette=float(rng.uniform(0, 0.35) * s),
        noise_sigma=float(rng.uniform(1.0, 1.0 + 5.0 * s)),
        defocus=float(rng.uniform(0.15, 0.6) * s) if blur_kind == 1 else 0.0,
        motion=float(rng.uniform(0.4, 1.5) * s) if blur_kind == 2 else 0.0,
        motion_angle=float(rng.uniform(0, 180)),
        dust=int(min(8, rng.poisson(3 * s))),
        jpeg_quality=round(95 - rng.uniform(0, 35) * s),
    )


def lighting_gain(shape: tuple[int, int], n: Nuisance) -> np.ndarray:
    """Level x gradient x vignetting; smooth, so it is computed small and resized up."""
    h, w = shape
    sh, sw = max(2, h // 16), max(2, w // 16)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xn = (xs + 0.5) / sw * 2 - 1
    yn = (ys + 0.5) / sh * 2 - 1
    grad = 1 + 0.5 * n.gradient * (math.cos(n.gradient_angle) * xn + math.sin(n.gradient_angle) * yn)
    vig = 1 - n.vignette * (xn**2 + yn**2) / 2
    small = (n.light_level * grad * vig).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def add_dust(img: np.ndarray, n: Nuisance, rng: np.random.Generator) -> None:
    """Tiny, faint, soft specks: far smaller and fainter than the smallest default-severity pit."""
    h, w = img.shape[:2]
    u = unit((h, w))
    for _ in range(n.dust):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        r = max(0.7, float(rng.uniform(0.15, 0.45)) * u)
        depth = float(rng.uniform(8, 25))
        pad = math.ceil(3 * r) + 1
        x0, y0, x1, y1 = max(0, int(x) - pad), max(0, int(y) - pad), min(w, int(x) + pad + 1), min(h, int(y) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d2 = (xx - x) ** 2 + (yy - y) ** 2
        img[y0:y1, x0:x1] -= depth * np.exp(-d2 / (2 * r * r))


def blur(img: np.ndarray, n: Nuisance) -> np.ndarray:
    u = unit(img.shape[:2])
    if n.defocus * u > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), n.defocus * u)
    length = round(n.motion * u)
    if length >= 2:
        k = np.zeros((length, length), np.float32)
        c = (length - 1) / 2
        dx, dy = math.cos(math.radians(n.motion_angle)), math.sin(math.radians(n.motion_angle))
        cv2.line(k, (round(c - dx * c), round(c - dy * c)), (round(c + dx * c), round(c + dy * c)), 1.0, 1)
        img = cv2.filter2D(img, -1, k / k.sum())
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def apply_camera(img: np.ndarray, n: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Float grey image of the scene -> what the camera delivers (float, before quantisation)."""
    img *= lighting_gain(img.shape[:2], n)
    add_dust(img, n, rng)
    img = blur(img, n)
    if n.noise_sigma > 0:
        img += np.float32(n.noise_sigma) * noise_view(img.shape[:2], rng, key=1)
    return img


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        return img
    flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 else cv2.IMREAD_COLOR
    return cv2.imdecode(buf, flag)
