"""Heatmaps drawn on frames, without PyTorch: the ``Explanation`` record, the colour blend, and the
overlay of a map network's own defect map (which needs no gradients: the service draws it from the
inference it made anyway). Grad-CAM for networks without a map is ``inspection.explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from inspection.imageops import encode_image
from inspection.regions import MapGeometry, map_heat, valid_cells


@dataclass(frozen=True, eq=False)
class Explanation:
    """``heatmap`` is float32 in [0, 1] at the frame's resolution (HxW of the decoded image);
    ``peak`` is its maximum as (x, y) in those pixels. ``overlay`` is the frame (BGR uint8)
    blended with the heatmap in the JET colour map."""

    heatmap: np.ndarray
    overlay: np.ndarray
    target: str
    peak: tuple[int, int]

    def overlay_png(self) -> bytes:
        return encode_image(self.overlay, ".png")


def for_display(heat: np.ndarray) -> np.ndarray:
    """A sharp (pixel-level) map spread and lifted so a thumbnail shows where it points. Only the
    overlay uses this; ``heatmap`` and ``peak`` stay exact."""
    sigma = max(1.0, max(heat.shape) / 80)
    soft = cv2.GaussianBlur(heat, (0, 0), sigma)
    top = float(soft.max())
    return np.sqrt(soft / top) if top > 0 else soft


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """JET-coloured ``heatmap`` (HxW in [0, 1]) over ``image`` (gray or BGR uint8), as BGR uint8."""
    base = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 or image.shape[2] == 1 else image
    colour = cv2.applyColorMap(np.clip(heatmap * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(base, 1.0 - alpha, colour, alpha, 0.0)


def map_explanation(view: np.ndarray, maps: np.ndarray, geometry: MapGeometry, captured: tuple[int, int],
                    labels: tuple[str, ...]) -> Explanation:
    """The defect map over ``view`` (the frame, possibly shrunk), in absolute map probabilities: a
    clean part shows no colour, unlike a Grad-CAM map, which is scaled to its own maximum."""
    heat = map_heat(maps, geometry, captured, view.shape[:2])
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    rows, cols = valid_cells(geometry)
    flat = maps[:, :rows, :cols].reshape(maps.shape[0], -1).max(axis=1)
    return Explanation(heat, blend(view, np.clip(heat, 0, 1)), labels[int(np.argmax(flat))], (int(x), int(y)))


class MapExplainer:
    """The Explainer interface for a map network: the overlay is drawn from each item's own map."""

    def __init__(self, card: Any) -> None:
        self.card = card

    def explain_items(self, items: Sequence[Any], views: Sequence[np.ndarray]) -> list[Explanation]:
        """``items``: inspection.predictor.Item with their map; ``views``: their frames, possibly shrunk."""
        return [map_explanation(v, it.map, it.geometry, it.size or v.shape[:2], self.card.map_classes)
                for it, v in zip(items, views, strict=True)]


def explainer_for(bundle: Any, threads: int | None = 1) -> Any:
    """Heatmaps for this bundle: its own defect map, or Grad-CAM (PyTorch, loaded only then)."""
    if bundle.card.has_map:
        return MapExplainer(bundle.card)
    from inspection.explain import Explainer

    return Explainer(bundle, threads=threads)
