"""Small image helpers for what people look at: thumbnails, overlays, their encoding."""

from __future__ import annotations

import cv2
import numpy as np

from inspection.errors import DefectscopeError


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` with its longer side at most ``side`` pixels (area-averaged), else unchanged."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def encode_image(image: np.ndarray, ext: str = ".png", quality: int = 85) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:  # only for an empty or malformed array, which callers never pass
        raise DefectscopeError(f"could not encode a {image.shape} image as {ext}")
    return buf.tobytes()
