"""Defect map -> defect regions in frame pixels: what an operator needs to find the defect on the part.

A region is a connected component (8-connected) of the map cells at or above the card's region
threshold, taken over the maximum of the defect channels. It carries its bounding box and area
in camera pixels, its peak map probability, and the defect class of the channel that peaks
there. Map cells are ``MAP_STRIDE`` model pixels; ``MapGeometry`` maps them back to the frame
through the crop (ROI, fixture) and scale the preprocessor applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MAP_STRIDE = 8  # model pixels per map cell (inspection.segdec)
MAX_REGIONS = 20  # the largest-peaked regions an answer lists; a map full of blobs says enough with 20


@dataclass(frozen=True)
class Region:
    box: tuple[int, int, int, int]  # x, y, w, h in camera pixels
    area: int  # camera pixels covered by the region's map cells
    peak: float  # highest map probability in the region
    label: str  # defect class whose channel peaks there
    peak_xy: tuple[int, int]  # where, in camera pixels (the peak cell's centre)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "area": self.area, "peak": round(self.peak, 4), "label": self.label,
                "peak_xy": list(self.peak_xy)}


@dataclass(frozen=True)
class MapGeometry:
    """Where the model's input lay in the frame: ``box`` (x, y, w, h, camera pixels, may reach past
    the frame with a fixture) resized to ``model`` (h, w) model pixels."""

    box: tuple[int, int, int, int]
    model: tuple[int, int]

    def cell_to_frame(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map-cell corners (fractional cell units) -> camera pixel coordinates."""
        x, y, w, h = self.box
        return x + cols * MAP_STRIDE * w / self.model[1], y + rows * MAP_STRIDE * h / self.model[0]


def valid_cells(geometry: MapGeometry) -> tuple[int, int]:
    """Map cells that cover the image rather than its padding (rows, cols)."""
    return -(-geometry.model[0] // MAP_STRIDE), -(-geometry.model[1] // MAP_STRIDE)


def find_regions(maps: np.ndarray, labels: Sequence[str], geometry: MapGeometry, threshold: float,
                 frame: tuple[int, int] | None = None) -> tuple[Region, ...]:
    """Regions of ``maps`` (D, h, w probabilities, one channel per ``labels``), highest peak first;
    boxes are clipped to ``frame`` (h, w) when given."""
    rows, cols = valid_cells(geometry)
    maps = maps[:, :rows, :cols]
    top = maps.max(axis=0)
    hot = (top >= threshold).astype(np.uint8)
    if not hot.any():
        return ()
    n, comp, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    cell_area = (MAP_STRIDE * geometry.box[2] / geometry.model[1]) * (MAP_STRIDE * geometry.box[3] / geometry.model[0])
    out = []
    for k in range(1, n):
        c0, r0, cw, ch, cells = (int(v) for v in stats[k])
        inside = comp == k
        flat = int(np.argmax(np.where(inside, top, -1.0)))
        pr, pc = divmod(flat, top.shape[1])
        (x0, x1), (y0, y1) = geometry.cell_to_frame(np.array([c0, c0 + cw]), np.array([r0, r0 + ch]))
        px, py = geometry.cell_to_frame(np.array([pc + 0.5]), np.array([pr + 0.5]))
        if frame is not None:
            x0, y0 = max(0.0, x0), max(0.0, y0)
            x1, y1 = min(float(frame[1]), x1), min(float(frame[0]), y1)
            if x1 <= x0 or y1 <= y0:
                continue  # wholly in the padding a fixture box added past the frame
        box = (int(np.floor(x0)), int(np.floor(y0)), max(1, int(np.ceil(x1 - x0))), max(1, int(np.ceil(y1 - y0))))
        out.append(Region(box, round(cells * cell_area), float(top[pr, pc]),
                          labels[int(np.argmax(maps[:, pr, pc]))], (int(px[0]), int(py[0]))))
    out.sort(key=lambda r: -r.peak)
    return tuple(out[:MAX_REGIONS])


def map_heat(maps: np.ndarray, geometry: MapGeometry, frame: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """The map's maximum over defect channels drawn onto a frame of size ``frame`` (h, w) at size
    ``out`` (h, w): float32 in [0, 1], zero outside the region the model saw."""
    rows, cols = valid_cells(geometry)
    top = np.ascontiguousarray(maps[:, :rows, :cols].max(axis=0), dtype=np.float32)
    fy, fx = out[0] / frame[0], out[1] / frame[1]
    x, y, w, h = geometry.box
    # the cells span MAP_STRIDE * cells model pixels, which may pass the model input by the padding
    cw, ch = cols * MAP_STRIDE * w / geometry.model[1], rows * MAP_STRIDE * h / geometry.model[0]
    m = np.float32([[cw * fx / cols, 0, x * fx], [0, ch * fy / rows, y * fy]])
    # cell centres sit at (i + 0.5) cells: shift half a cell so bilinear values peak there
    m[:, 2] += 0.5 * np.float32([cw * fx / cols - 1, ch * fy / rows - 1])
    return cv2.warpAffine(top, m, (out[1], out[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
