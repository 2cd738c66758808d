"""One PNG grid of example images per class: a row per class, so a person can judge the data at a glance."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from datasets.layout import Dataset, DatasetError, Sample
from inspection.atomic import write_bytes_atomic
from inspection.decode import read_image_file
from inspection.errors import ImageDecodeError

_LABEL_W = 150
_GAP = 4
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def pick(samples: list[Sample], k: int, seed: int) -> list[Sample]:
    """``k`` samples in a stable pseudo-random order (the same sheet for the same data and seed)."""
    return sorted(samples, key=lambda s: hashlib.sha256(f"{seed}\0{s.sha256 or s.path}".encode()).hexdigest())[:k]


def _thumb(ds: Dataset, s: Sample, box: tuple[int, int], outline: bool) -> np.ndarray:
    th, tw = box
    try:
        img, _ = read_image_file(ds.abspath(s), color="bgr", min_size=box)
    except ImageDecodeError:
        tile = np.full((th, tw, 3), 40, np.uint8)
        cv2.putText(tile, "unreadable", (4, th // 2), _FONT, 0.4, (0, 0, 255), 1, cv2.LINE_AA)
        return tile
    scale = min(th / img.shape[0], tw / img.shape[1])
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    if outline and s.mask and (ds.root / s.mask).is_file():
        try:
            mask, _ = read_image_file(ds.root / s.mask, color="gray")
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            contours, _ = cv2.findContours((mask > 20).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(small, contours, -1, (0, 0, 255), 1, cv2.LINE_AA)
        except ImageDecodeError:
            pass  # the sheet still shows the image; 'dataset check' reports the broken mask
    tile = np.zeros((th, tw, 3), np.uint8)
    y, x = (th - small.shape[0]) // 2, (tw - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    return tile


def contact_sheet(ds: Dataset, out: Path, *, per_class: int = 8, thumb: int = 160, split: str | None = None,
                  seed: int = 0, outline: bool = False, classes: list[str] | None = None) -> Path:
    """Write a PNG with one row of ``per_class`` thumbnails (``thumb`` px wide) per class.

    ``outline`` draws each defect's mask outline in red. Colour is kept only when an image has it.
    """
    if per_class < 1 or thumb < 16:
        raise DatasetError("contact sheet needs at least 1 image per class and thumbnails of at least 16 px")
    rows_of = classes or list(ds.info.classes) or sorted({s.label for s in ds.samples})
    pool = [s for s in ds.samples if split is None or s.split == split]
    if not pool:
        raise DatasetError(f"no images{f' in split {split!r}' if split else ''} to show")
    first = next(s for s in pool)
    try:
        h0, w0 = read_image_file(ds.abspath(first), color="gray", min_size=(thumb, thumb))[0].shape[:2]
    except ImageDecodeError:
        h0, w0 = 1, 1
    box = (max(16, round(thumb * h0 / w0)), thumb)
    rows = []
    for label in rows_of:
        chosen = pick([s for s in pool if s.label == label], per_class, seed)
        row = np.full((box[0], _LABEL_W + per_class * (box[1] + _GAP), 3), 255, np.uint8)
        count = sum(1 for s in pool if s.label == label)
        cv2.putText(row, label, (6, box[0] // 2), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(row, f"n={count}", (6, box[0] // 2 + 22), _FONT, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
        for k, s in enumerate(chosen):
            x = _LABEL_W + k * (box[1] + _GAP)
            row[:, x : x + box[1]] = _thumb(ds, s, box, outline)
        rows.append(row)
        rows.append(np.full((_GAP, row.shape[1], 3), 255, np.uint8))
    sheet = np.vstack(rows[:-1])
    if not outline and np.array_equal(sheet[..., 0], sheet[..., 2]) and np.array_equal(sheet[..., 0], sheet[..., 1]):
        sheet = sheet[..., 0]  # all grey: a third of the file size
    ok, buf = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:  # pragma: no cover
        raise DatasetError(f"could not encode the contact sheet {out}")
    out = Path(out)
    write_bytes_atomic(out, buf.tobytes())
    return out
