"""Decoded image -> normalized model input. Shared by the inspector and by training.

Two steps so training can augment in between: ``prepare`` (ROI crop, resize, colour order:
still uint8) and ``normalize`` (float32 CHW). What is trained is exactly what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.errors import PreprocessError


@dataclass(frozen=True)
class PreprocessConfig:
    """The part of a model card that says how pixels reach the model."""

    input_size: tuple[int, int]  # (height, width)
    color: str = "rgb"  # "rgb" (3 channels, torchvision order) or "gray" (1 channel)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in captured pixels

    def __post_init__(self) -> None:
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
        the ratio of captured size to ROI size.
        """
        h, w = self.input_size
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
        """ROI crop, resize and colour conversion: HxWxC uint8 in the model's channel order."""
        cfg = self.config
        if cfg.roi is not None:
            image = self._crop(image, captured)
        h, w = cfg.input_size
        if image.shape[:2] != (h, w):
            shrink = image.shape[0] > h and image.shape[1] > w
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if cfg.color == "gray":
            if image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            return image[:, :, None]
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

    def _crop(self, image: np.ndarray, captured: tuple[int, int] | None) -> np.ndarray:
        x, y, w, h = self.config.roi  # type: ignore[misc]
        if captured is not None and captured != image.shape[:2]:
            sy, sx = image.shape[0] / captured[0], image.shape[1] / captured[1]
            x, y, w, h = round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))
        crop = image[y : y + h, x : x + w]
        if crop.size == 0:
            raise PreprocessError(
                f"ROI {self.config.roi} lies outside the {image.shape[1]}x{image.shape[0]} image: "
                "check the camera framing or the model card's ROI"
            )
        return crop
