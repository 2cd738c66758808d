"""Native-resolution training crops: around a defect where the mask shows one, anywhere on good parts.

A defect-map network is trained on crops of the frame at the model's scale, so a two-pixel crack
stays two pixels, and infers the whole frame at once (every layer is convolutional). A crop of a
masked defect image is centred on a random defect pixel, shifted by up to a third of the crop so
the defect is not always in the middle; a good frame's crop is uniform over the frame, padded as
inference pads it. Masked defect images are drawn ``DEFECT_REPEATS`` times per epoch: defects are
few and each crop shows one of them. The crop position depends only on (seed, epoch, index), so a
resumed run draws the same crops.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from inspection.preprocess import Preprocessor, pad_to_multiple
from training.data import CachedSplit, augment_pair
from training.mask_loss import NO_MASK
from training.sampling import epoch_seed
from training.synth_defects import AnomalyLabels

DEFECT_REPEATS = 3


class NativeCrops(TorchDataset):
    """Cached native-size frames -> (augmented normalized crop, label, crop mask or NO_MASK)."""

    def __init__(self, split: CachedSplit, preprocessor: Preprocessor, augment: Callable | None, crop: int,
                 pass_index: set[int], seed: int = 0, anomaly: AnomalyLabels | None = None) -> None:
        self.split, self.preprocessor, self.augment, self.crop = split, preprocessor, augment, crop
        self.anomaly = anomaly
        self.seed, self.epoch = seed, 0
        masks = split.masks or [None] * len(split)
        self.index = [i for i, (lab, m) in enumerate(zip(split.labels, masks, strict=True))
                      for _ in range(DEFECT_REPEATS if int(lab) not in pass_index and m is not None and m.any()
                                     else 1)]
        self.labels = split.labels[self.index]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def _window(self, shape: tuple[int, int], mask: np.ndarray | None, rng: np.random.Generator) -> tuple[int, int]:
        h, w = shape
        ch, cw = min(self.crop, h), min(self.crop, w)
        if mask is not None and mask.any():
            ys, xs = np.nonzero(mask)
            k = int(rng.integers(len(ys)))
            jy, jx = (int(rng.integers(-(c // 3), c // 3 + 1)) for c in (ch, cw))
            return (int(np.clip(ys[k] + jy - ch // 2, 0, h - ch)), int(np.clip(xs[k] + jx - cw // 2, 0, w - cw)))
        return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        i = self.index[k]
        # crops come from the frame as inference sees it, mirrored out to the network's multiple: a
        # model that learns "unusual texture" (good-only) must have seen that seam as good
        img = pad_to_multiple(self.split.images[i])
        mask = self.split.masks[i] if self.split.masks is not None else None
        mask = None if mask is None else pad_to_multiple(mask)
        rng = np.random.default_rng((epoch_seed(self.seed, self.epoch), k))
        y, x = self._window(img.shape[:2], mask, rng)
        c = self.crop
        img = _fill(img[y : y + c, x : x + c], c)
        mask = None if mask is None else _fill(mask[y : y + c, x : x + c], c)
        label = int(self.split.labels[i])
        if self.augment is not None:
            img, mask = augment_pair(self.augment, img, mask, label, self.anomaly)
            if img.ndim == 2:
                img = img[:, :, None]
        if self.anomaly is not None:
            label = self.anomaly.after(label, mask)
        t = torch.from_numpy(self.preprocessor.normalize(np.ascontiguousarray(img)))
        m = (torch.from_numpy(np.ascontiguousarray(mask)).float()[None] if mask is not None
             else torch.full((1, c, c), NO_MASK))
        return t, label, m


def _fill(a: np.ndarray, size: int) -> np.ndarray:
    """A crop of a frame smaller than the crop, mirrored out to size x size (as inference pads)."""
    ph, pw = size - a.shape[0], size - a.shape[1]
    if not (ph or pw):
        return a
    out = cv2.copyMakeBorder(a, 0, ph, 0, pw, cv2.BORDER_REFLECT_101 if min(a.shape[:2]) > max(ph, pw)
                             else cv2.BORDER_REPLICATE)
    return out.reshape(size, size, *a.shape[2:])
