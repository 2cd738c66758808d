"""Dataset split -> images decoded once and cached prepared (uint8, model size) -> augmented tensors.

Decoding and preparation are the predictor's own (``inspection.predictor.Preparer``), so a
training image and a served frame of the same file reach the network as the same pixels
(before augmentation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from datasets.layout import Dataset, DatasetError
from inspection.errors import ImageDecodeError, PreprocessError
from inspection.predictor import Preparer
from inspection.preprocess import Preprocessor
from training.mask_loss import NO_MASK
from training.synth_defects import AnomalyLabels


def load_prepared(path: Path, preparer: Preparer, mask_path: Path | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """One file -> (prepared HxWxC uint8, decoded and prepared exactly as the line does; its mask
    as HxW 0/1 uint8 through the same crop and resize, or None without ``mask_path``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from None
    image, captured, _ = preparer.decode(data)
    preprocessor = preparer.preprocessor
    if mask_path is None:
        return preprocessor.prepare(image, captured), None
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ImageDecodeError(f"cannot read the mask {mask_path}")
    return preprocessor.prepare_with_mask(image, mask, captured)


@dataclass
class CachedSplit:
    """A split held in memory as prepared uint8 arrays (about 50 KB each at 128x128 RGB)."""

    name: str
    images: list[np.ndarray]
    labels: np.ndarray  # int64 class indices
    paths: list[str]
    skipped: list[str] = field(default_factory=list)  # "path: reason" for unreadable files
    masks: list[np.ndarray | None] | None = None  # HxW 0/1 per image (None: that image has none)

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


def load_split(
    dataset: Dataset,
    split: str,
    classes: Sequence[str],
    preparer: Preparer,
    *,
    threads: int = 2,
    on_image: Callable[[], None] | None = None,
    masks: bool = False,
) -> CachedSplit:
    """Decode every image of ``split`` in parallel (OpenCV releases the GIL while decoding).

    Unreadable images are skipped and listed in ``skipped``: one bad file must not cost a
    night of training, but the caller reports them.
    """
    samples = dataset.split(split)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise DatasetError(f"{split} split has labels {unknown} that dataset.json does not list: fix the manifest")

    def work(sample):
        mask_path = dataset.root / sample.mask if masks and sample.mask else None
        try:
            return load_prepared(dataset.abspath(sample), preparer, mask_path), None
        except (ImageDecodeError, PreprocessError) as exc:
            return None, f"{sample.path}: {exc}"
        finally:
            if on_image is not None:
                on_image()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(work, samples))
    images, labels, paths, skipped, mask_list = [], [], [], [], []
    for sample, (loaded, err) in zip(samples, results, strict=True):
        if err is not None:
            skipped.append(err)
            continue
        images.append(loaded[0])
        mask_list.append(loaded[1])
        labels.append(index[sample.label])
        paths.append(sample.path)
    return CachedSplit(split, images, np.asarray(labels, dtype=np.int64), paths, skipped,
                       mask_list if masks and any(m is not None for m in mask_list) else None)


class AugmentedImages(TorchDataset):
    """Cached prepared images -> (augmented, normalized CHW float32 tensor, label)."""

    def __init__(self, split: CachedSplit, preprocessor: Preprocessor, augment: Callable | None = None,
                 anomaly: AnomalyLabels | None = None) -> None:
        self.split = split
        self.preprocessor = preprocessor
        self.augment = augment
        self.anomaly = anomaly  # synthesized defects: which images are clean, what a drawn one becomes

    def __len__(self) -> int:
        return len(self.split)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to redraw per epoch (the augmentation is reseeded by the trainer)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        """(image, label), plus the mask (1xHxW float, NO_MASK where unknown) when the split has masks."""
        img, label = self.split.images[i], int(self.split.labels[i])
        mask = self.split.masks[i] if self.split.masks is not None else None
        if self.augment is not None:
            if self.split.masks is not None:  # the same geometry for the mask
                img, mask = augment_pair(self.augment, img, mask, label, self.anomaly)
            else:
                img = self.augment(image=img)["image"]
            if img.ndim == 2:  # some albumentations ops drop a single channel axis
                img = img[:, :, None]
        if self.anomaly is not None:
            label = self.anomaly.after(label, mask)
        x = torch.from_numpy(self.preprocessor.normalize(np.ascontiguousarray(img)))
        if self.split.masks is None:
            return x, label
        m = (torch.from_numpy(np.ascontiguousarray(mask)).float()[None] if mask is not None
             else torch.full((1, *img.shape[:2]), NO_MASK))
        return x, label, m


def augment_pair(augment: Callable, img: np.ndarray, mask: np.ndarray | None, label: int,
                 anomaly: AnomalyLabels | None) -> tuple[np.ndarray, np.ndarray | None]:
    """An image and its mask through one augmentation (an unknown mask stays unknown); with synthesized
    defects, the label says whether one may be drawn."""
    extra = {} if anomaly is None else {"clean": anomaly.clean(label)}
    out = augment(image=img, mask=mask if mask is not None else np.zeros(img.shape[:2], np.uint8), **extra)
    return out["image"], (out["mask"] if mask is not None else None)


def with_clean_masks(split: CachedSplit, anomaly: AnomalyLabels) -> CachedSplit:
    """Pass-class images get an all-zero mask (a good part has no defect pixel): a synthesized
    defect's mask is drawn into it."""
    have = split.masks or [None] * len(split)
    masks = [np.zeros(img.shape[:2], np.uint8) if m is None and anomaly.clean(lab) else m
             for img, lab, m in zip(split.images, split.labels, have, strict=True)]
    return replace(split, masks=masks)


def stack_normalized(split: CachedSplit, preprocessor: Preprocessor) -> np.ndarray:
    """The whole split as one NCHW float32 array (for evaluation without augmentation)."""
    return np.ascontiguousarray(np.stack([preprocessor.normalize(img) for img in split.images]))
