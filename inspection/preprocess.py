"""Decoded image -> normalized model input. Shared by the predictor and by training.

Two steps so training can augment in between: ``prepare`` (ROI crop, resize, colour order:
still uint8) and ``normalize`` (float32 CHW). What is trained is exactly what is served.

Two geometries:

* whole frame (``scale`` None): the frame (or its ROI, or the box around the fixtured part) is
  resized to ``input_size``, whatever its size;
* native resolution (``scale`` set): the frame keeps its own size times ``scale`` (1: camera
  pixels; 0.5: half), so a two-pixel crack stays one or two pixels, and is padded to a multiple
  of ``NATIVE_MULTIPLE`` for a fully convolutional network; ``input_size`` is then the size of the
  training crops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.errors import PreprocessError
from inspection.fixture import FIXTURES, crop_box, fixture_box

NATIVE_MULTIPLE = 16  # a native-resolution input is padded to this (the network's deepest stride)
# input pixels each side of a tile that its kept map cells stay away from: the measured reach of a segdec
# cell (about 56 px) rounded up to the 16-px grid (inspection.tiling)
TILE_MARGIN = 64


@dataclass(frozen=True)
class PreprocessConfig:
    """The part of a model card that says how pixels reach the model."""

    input_size: tuple[int, int]  # (height, width)
    color: str = "rgb"  # "rgb" (3 channels, torchvision order) or "gray" (1 channel)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in captured pixels
    fixture: str | None = None  # "bright" / "dark": crop around the part found in the frame (see fixture.py)
    fixture_margin: float = 0.05  # context kept around the part, as a fraction of its size per side
    scale: float | None = None  # native resolution: model pixels per camera pixel; None: resize to input_size
    tile: int | None = None  # native: infer in overlapping tiles of at most this side (model pixels); None: one pass

    def __post_init__(self) -> None:
        if self.scale is not None and not 0 < self.scale <= 4:
            raise ValueError(f"scale must lie in (0, 4], not {self.scale}")
        if self.tile is not None and self.scale is None:
            raise ValueError("tile applies at native resolution only (set scale)")
        if self.tile is not None and (self.tile <= 2 * TILE_MARGIN or self.tile % NATIVE_MULTIPLE):
            raise ValueError(f"tile must be a multiple of {NATIVE_MULTIPLE} above {2 * TILE_MARGIN} "
                             f"(tiles overlap by {2 * TILE_MARGIN} px)")
        if self.fixture is not None and self.fixture not in FIXTURES:
            raise ValueError(f"fixture must be one of {FIXTURES} or None, not {self.fixture!r}")
        if not 0 <= self.fixture_margin <= 1:
            raise ValueError(f"fixture_margin must be in [0, 1], not {self.fixture_margin}")
        if self.color not in ("rgb", "gray"):
            raise ValueError(f"colour mode must be 'rgb' or 'gray', not {self.color!r}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need {self.channels} values for colour mode {self.color}")

    @property
    def native(self) -> bool:
        return self.scale is not None

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def decode_color(self) -> str:
        return "gray" if self.color == "gray" else "bgr"

    def min_decode_size(self, captured: tuple[int, int] | None = None) -> tuple[int, int]:
        """Smallest (h, w) a reduced decode may produce and still fill the model input.

        With an ROI the crop must keep the input size, so the whole image may shrink only by
        the ratio of captured size to ROI size. A fixtured part is assumed to span at least
        half the frame (or ROI), so the decode keeps twice the input size.
        """
        if self.scale is not None:  # the whole frame at the model's scale (an ROI keeps it)
            if captured is None:
                return 1, 1
            return math.ceil(captured[0] * self.scale), math.ceil(captured[1] * self.scale)
        h, w = self.input_size
        if self.fixture is not None:
            h, w = 2 * h, 2 * w
        if self.roi is None or captured is None:
            return h, w
        _, _, rw, rh = self.roi
        return (h * captured[0] + rh - 1) // rh, (w * captured[1] + rw - 1) // rw


class Preprocessor:
    """Applies a PreprocessConfig; cheap to build, holds precomputed normalisation."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        # (x/255 - mean)/std == x*scale + bias, one fused multiply-add per pixel
        std = np.asarray(config.std, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std)).reshape(-1, 1, 1)
        self._bias = (-np.asarray(config.mean, dtype=np.float32) / std).reshape(-1, 1, 1)

    def prepare(self, image: np.ndarray, captured: tuple[int, int] | None = None,
                box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """ROI crop, fixture crop, resize and colour conversion: HxWxC uint8 in the model's channel order.
        ``box`` is ``region(image, captured)`` when the caller has it already."""
        decoded = image.shape[:2]
        if self._crops:
            image = crop_box(image, box or self.region(image, captured))
        return self._to_model(image, self._model_size(decoded, captured, image.shape[:2]))

    def prepare_with_mask(self, image: np.ndarray, mask: np.ndarray,
                          captured: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``prepare`` plus the same geometry for a defect mask of any size (training): HxW uint8 0/1."""
        full = image.shape[:2]
        mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        if self._crops:
            box = self.region(image, captured)
            image, mask = crop_box(image, box), crop_box(mask, box)
        h, w = self._model_size(full, captured, image.shape[:2])
        # INTER_AREA then > 0: a defect thinner than one model pixel still marks that pixel
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
        return self._to_model(image, (h, w)), (mask > 0).astype(np.uint8)

    def _model_size(self, decoded: tuple[int, int], captured: tuple[int, int] | None,
                    cropped: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the prepared image: ``input_size``, or at native resolution the cropped region in
        camera pixels times ``scale`` (the decode may have been reduced already)."""
        cfg = self.config
        if cfg.scale is None:
            return cfg.input_size
        cap = captured or decoded
        fy, fx = cap[0] / decoded[0] * cfg.scale, cap[1] / decoded[1] * cfg.scale
        return max(1, round(cropped[0] * fy)), max(1, round(cropped[1] * fx))

    @property
    def _crops(self) -> bool:
        return self.config.roi is not None or self.config.fixture is not None

    def _to_model(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        cfg = self.config
        h, w = size
        if image.shape[:2] != (h, w):
            shrink = image.shape[0] > h and image.shape[1] > w
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if cfg.color == "gray":
            if image.ndim == 3 and image.shape[2] == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            return image.reshape(h, w, 1)
        if image.ndim == 2 or image.shape[2] == 1:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def normalize(self, prepared: np.ndarray) -> np.ndarray:
        """HxWxC uint8 -> CxHxW float32 normalized; at native resolution padded (mirrored) on the
        right and bottom to a multiple of NATIVE_MULTIPLE, as a fully convolutional network needs."""
        if self.config.scale is not None:
            prepared = pad_to_multiple(prepared)
        chw = prepared.transpose(2, 0, 1).astype(np.float32)
        return chw * self._scale + self._bias

    def __call__(self, image: np.ndarray, captured: tuple[int, int] | None = None) -> np.ndarray:
        return self.normalize(self.prepare(image, captured))

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """NCHW float32, contiguous, ready for either backend."""
        return np.ascontiguousarray(np.stack([self(img) for img in images]))

    def region(self, image: np.ndarray, captured: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """(x, y, w, h) of ``image`` that ``prepare`` resizes into the model input (it may reach
        past the frame with a fixture); heatmaps are mapped back onto the frame through it."""
        cfg = self.config
        x, y, w, h = (0, 0, image.shape[1], image.shape[0]) if cfg.roi is None else self._roi_box(image, captured)
        if cfg.fixture is None:
            return x, y, w, h
        ih, iw = cfg.input_size
        fx, fy, fw, fh = fixture_box(image[y : y + h, x : x + w], cfg.fixture, cfg.fixture_margin, iw / ih)
        return x + fx, y + fy, fw, fh

    def _roi_box(self, image: np.ndarray, captured: tuple[int, int] | None) -> tuple[int, int, int, int]:
        x, y, w, h = self.config.roi  # type: ignore[misc]
        if captured is not None and captured != image.shape[:2]:
            sy, sx = image.shape[0] / captured[0], image.shape[1] / captured[1]
            x, y, w, h = round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(image.shape[1], x + w), min(image.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            raise PreprocessError(
                f"ROI {self.config.roi} lies outside the {image.shape[1]}x{image.shape[0]} image: "
                "check the camera framing or the model card's ROI"
            )
        return x0, y0, x1 - x0, y1 - y0


def pad_to_multiple(image: np.ndarray, multiple: int = NATIVE_MULTIPLE) -> np.ndarray:
    """HxW(xC) padded on the bottom and right, mirrored, to multiples of ``multiple`` (a copy only when needed)."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return image
    mode = cv2.BORDER_REFLECT_101 if h > ph and w > pw else cv2.BORDER_REPLICATE  # reflect needs room
    out = cv2.copyMakeBorder(image, 0, ph, 0, pw, mode)
    return out.reshape(h + ph, w + pw, *image.shape[2:])
