"""Part fixturing: find the part in the frame and crop a box around it before resizing.

Machine-vision tools locate the part first and inspect relative to it (Cognex calls it a
fixture). For a CNN this matters twice: the part fills the model input, so a 128-pixel input
sees the part at ~1.7x the detail of the whole frame, and parts that shift on the conveyor
all look centred, so the network need not learn position.

The locator is deliberately simple and cheap (about 1 ms): the largest blob of the Otsu
threshold at <=256 pixels, which suits a part that is brighter (``"bright"``) or darker
(``"dark"``) than its background. When nothing plausible is found the whole frame is used,
so a verdict is still made (the image-quality gate judges framing separately).
"""

from __future__ import annotations

import cv2
import numpy as np

FIXTURES = ("bright", "dark")
_SEARCH_SIDE = 256  # locate on a thumbnail: Otsu and blob statistics need no more
_MIN_AREA = 0.01  # a blob under 1% of the frame is noise, not the part
_MAX_AREA = 0.95  # one filling the frame is no part on a background (a flat or empty frame)


def locate_part(image: np.ndarray, polarity: str = "bright") -> tuple[float, float, float, float] | None:
    """(x, y, w, h) of the part in ``image`` pixels, or None when no plausible blob exists."""
    if image.ndim == 3:
        image = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    gray = image
    h, w = gray.shape
    f = min(1.0, _SEARCH_SIDE / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    mode = cv2.THRESH_BINARY if polarity == "bright" else cv2.THRESH_BINARY_INV
    _, mask = cv2.threshold(small, 0, 255, mode + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if not _MIN_AREA * small.size <= stats[i, cv2.CC_STAT_AREA] <= _MAX_AREA * small.size:
        return None
    x, y, bw, bh = (float(v) / f for v in stats[i, :4])
    return x, y, bw, bh


def fixture_box(image: np.ndarray, polarity: str, margin: float, aspect: float) -> tuple[int, int, int, int]:
    """A box of the model's aspect (w/h) centred on the part, grown by ``margin`` on each side.

    It may reach past the frame; ``crop_box`` pads by replicating the border.
    """
    h, w = image.shape[:2]
    found = locate_part(image, polarity)
    if found is None:
        return 0, 0, w, h
    x, y, bw, bh = found
    cx, cy = x + bw / 2, y + bh / 2
    bw, bh = bw * (1 + 2 * margin), bh * (1 + 2 * margin)
    bw, bh = max(bw, bh * aspect), max(bh, bw / aspect)
    return round(cx - bw / 2), round(cy - bh / 2), max(1, round(bw)), max(1, round(bh))


def crop_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[y:y+h, x:x+w]`` with replicated borders where the box leaves the frame."""
    x, y, bw, bh = box
    h, w = image.shape[:2]
    pad = (max(0, -y), max(0, y + bh - h), max(0, -x), max(0, x + bw - w))
    if any(pad):
        image = cv2.copyMakeBorder(image, *pad, cv2.BORDER_REPLICATE)
        x, y = x + pad[2], y + pad[0]
    return image[y : y + bh, x : x + bw]
