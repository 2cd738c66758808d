"""Decoded image -> normalized model input. Shared by the predictor and by training.

Two steps so training can augment in between: ``prepare`` (ROI crop, resize, colour order:
still uint8) and ``normalize`` (float32 CHW). What is trained is exactly what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.errors import PreprocessError
from inspection.fixture import FIXTURES, crop_box, fixture_box


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

    def __post_init__(self) -> None:
        if self.fixture is not None and self.fixture not in FIXTURES:
            raise ValueError(f"fixture must be one of {FIXTURES} or None, not {self.fixture!r}")
        if not 0 <= self.fixture_margin <= 1:
            raise ValueError(f"fixture_margin must be in [0, 1], not {self.fixture_margin}")
        if self.color not in ("rgb", "gray"):
            raise ValueError(f"colour mode must be 'rgb' or 'gray', not {self.color!r}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need {self.channels} values for colour mode {self.color}")

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

    def prepare(self, image: np.ndarray, captured: tuple[int, int] | None = None) -> np.ndarray:
        """ROI crop, fixture crop, resize and colour conversion: HxWxC uint8 in the model's channel order."""
        if self._crops:
            image = crop_box(image, self.region(image, captured))
        return self._to_model(image)

    def prepare_with_mask(self, image: np.ndarray, mask: np.ndarray,
                          captured: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``prepare`` plus the same geometry for a defect mask of any size (training): HxW uint8 0/1."""
        h, w = self.config.input_size
        mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        if self._crops:
            box = self.region(image, captured)
            image, mask = crop_box(image, box), crop_box(mask, box)
        # INTER_AREA then > 0: a defect thinner than one model pixel still marks that pixel
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
        return self._to_model(image), (mask > 0).astype(np.uint8)

    @property
    def _crops(self) -> bool:
        return self.config.roi is not None or self.config.fixture is not None

    def _to_model(self, image: np.ndarray) -> np.ndarray:
        cfg = self.config
        h, w = cfg.input_size
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
        """HxWxC uint8 -> CxHxW float32 normalized."""
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
