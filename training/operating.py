"""The operating curve and the hardest cases: what a threshold choice costs, and the images it is
decided by (the lowest-scoring defects, the highest-scoring good parts), for the reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.atomic import write_bytes_atomic
from inspection.card import ModelCard
from inspection.overlay import map_explanation

HARDEST = 8  # thumbnails per side


def rates_over(scores: np.ndarray, is_defect: np.ndarray, fail: float,
               grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each threshold t of ``grid``: escape rate (defects below t), automatic false-reject rate
    (good at or above t) and, taking t as the review threshold under ``fail``, the review rate."""
    scores, is_defect = np.asarray(scores, dtype=np.float64), np.asarray(is_defect, dtype=bool)
    d, g, every = np.sort(scores[is_defect]), np.sort(scores[~is_defect]), np.sort(scores)
    esc = np.searchsorted(d, grid, side="left") / max(1, len(d))
    fr = 1 - np.searchsorted(g, grid, side="left") / max(1, len(g))
    below_fail = np.searchsorted(every, fail, side="left")
    rev = np.clip(below_fail - np.searchsorted(every, grid, side="left"), 0, None) / max(1, len(every))
    return grid, esc, fr, rev


def hardest(scores: np.ndarray, is_defect: np.ndarray, n: int = HARDEST) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` lowest-scoring defects and the ``n`` highest-scoring good parts."""
    scores, is_defect = np.asarray(scores), np.asarray(is_defect, dtype=bool)
    d, g = np.flatnonzero(is_defect), np.flatnonzero(~is_defect)
    return d[np.argsort(scores[d], kind="stable")][:n], g[np.argsort(-scores[g], kind="stable")][:n]


def thumbnail(item: Any, card: ModelCard, side: int = 240) -> bytes:
    """JPEG of what the model saw, its own defect map blended over it where it has one."""
    img = item.prepared
    bgr = img[:, :, 0] if card.preprocess.color == "gray" else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if getattr(item, "map", None) is not None and item.geometry is not None:
        bgr = map_explanation(bgr, item.map, item.geometry, item.size or bgr.shape[:2], card.map_classes).overlay
    scale = side / max(bgr.shape[:2])
    if scale < 1:
        bgr = cv2.resize(bgr, (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def hardest_cases(out: Path, items: Sequence[Any], paths: Sequence[str], scores: np.ndarray, is_defect: np.ndarray,
                  cards: Sequence[ModelCard] | ModelCard) -> dict[str, list[dict[str, Any]]]:
    """Write the hardest cases' thumbnails under ``out``/hardest; their rows for the report.
    ``cards``: the card that scored each item (out-of-fold scores come from several models)."""
    (out / "hardest").mkdir(parents=True, exist_ok=True)
    low, high = hardest(scores, is_defect)
    result: dict[str, list[dict[str, Any]]] = {}
    for side, idx in (("defects", low), ("good", high)):
        rows = []
        for k, i in enumerate(idx):
            card = cards if isinstance(cards, ModelCard) else cards[i]
            name = f"hardest/{side}-{k:02d}.jpg"
            write_bytes_atomic(out / name, thumbnail(items[i], card))
            rows.append({"thumb": name, "path": paths[i], "defect_score": float(scores[i])})
        result[side] = rows
    return result
