"""Whole-frame inference of a defect-map network in overlapping tiles, for frames too large for one pass.

Every layer of the map path is convolutional, so a map cell depends only on the input within its
receptive field (measured: about 56 pixels around the cell for ``segdec``). Tiles start on the
network's deepest stride and overlap by twice ``RECEPTIVE_MARGIN`` (64 px); each keeps only the
cells at least that margin away from its cut edges, so the stitched map equals the one-pass map to float
rounding. The frame's defect probability is the stitched map's maximum, so it is exact too; how it
is shared among defect classes (and the rest among pass classes) is taken from the tile holding the
hottest cell, which matches one pass for a model with one defect class and one pass class.

Any backend works: each tile is an ordinary input of the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from inspection.preprocess import NATIVE_MULTIPLE as STRIDE
from inspection.preprocess import TILE_MARGIN as RECEPTIVE_MARGIN
from inspection.regions import MAP_STRIDE
from inspection.runtime import Output, as_output


def starts(length: int, tile: int, margin: int = RECEPTIVE_MARGIN) -> list[int]:
    """Tile starts along one axis (all multiples of ``STRIDE``), the last tile flush with the end."""
    if length <= tile:
        return [0]
    step = tile - 2 * margin
    if step <= 0 or step % STRIDE or margin % STRIDE:
        raise ValueError(f"a tile of {tile} px cannot overlap by 2 x {margin} px on a {STRIDE}-px grid")
    out = list(range(0, length - tile, step))
    return [*out, length - tile]


def _kept(start: int, tile: int, length: int, margin: int) -> tuple[int, int]:
    """The input rows [a, b) whose map cells this tile contributes (away from its cut edges)."""
    a = 0 if start == 0 else start + margin
    b = length if start + tile >= length else start + tile - margin
    return a, b


def tiled_infer(infer: Callable[[np.ndarray], Output | np.ndarray], batch: np.ndarray, tile: int,
                defect: Sequence[bool], margin: int = RECEPTIVE_MARGIN) -> Output:
    """``infer`` over tiles of ``batch`` (N, C, H, W; H and W multiples of STRIDE) -> the one-pass Output."""
    n, _, h, w = batch.shape
    ys, xs = starts(h, tile, margin), starts(w, tile, margin)
    if len(ys) == len(xs) == 1:
        return as_output(infer(batch))
    defect = np.asarray(defect, dtype=bool)
    maps: np.ndarray | None = None
    peak = np.full(n, -1.0)
    probs = np.zeros((n, len(defect)), np.float32)
    for y in ys:
        for x in xs:
            th, tw = min(tile, h - y), min(tile, w - x)
            out = as_output(infer(np.ascontiguousarray(batch[:, :, y : y + th, x : x + tw])))
            if out.maps is None:
                raise ValueError("tiled inference needs a defect-map network")
            if maps is None:
                maps = np.zeros((n, out.maps.shape[1], h // MAP_STRIDE, w // MAP_STRIDE), np.float32)
            (a, b), (c, d) = _kept(y, th, h, margin), _kept(x, tw, w, margin)
            part = out.maps[:, :, (a - y) // MAP_STRIDE : (b - y) // MAP_STRIDE,
                            (c - x) // MAP_STRIDE : (d - x) // MAP_STRIDE]
            maps[:, :, a // MAP_STRIDE : b // MAP_STRIDE, c // MAP_STRIDE : d // MAP_STRIDE] = part
            top = part.reshape(n, -1).max(axis=1)
            hotter = top > peak
            peak[hotter], probs[hotter] = top[hotter], out.probs[hotter]
    assert maps is not None
    if defect.all() or not defect.any():  # no pass/fail split: the peak tile's class scores
        return Output(probs, maps)
    p = maps.reshape(n, -1).max(axis=1)[:, None]
    within_defect = probs * defect / np.maximum(probs[:, defect].sum(1, keepdims=True), 1e-12)
    within_pass = probs * ~defect / np.maximum(probs[:, ~defect].sum(1, keepdims=True), 1e-12)
    return Output((p * within_defect + (1 - p) * within_pass).astype(np.float32), maps)
