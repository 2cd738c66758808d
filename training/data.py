"""Dataset split -> images decoded once and cached prepared (uint8, model size) -> augmented tensors.

Decoding and preparation use the inspector's own functions with the same arguments, so a
training image and a served frame of the same file reach the network as the same pixels
(before augmentation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from datasets.layout import Dataset, DatasetError
from inspection.decode import decode_image
from inspection.errors import ImageDecodeError, PreprocessError
from inspection.imageinfo import read_image_info
from inspection.preprocess import Preprocessor


def load_prepared(path: Path, preprocessor: Preprocessor) -> np.ndarray:
    """One file -> prepared HxWxC uint8, decoded exactly as Inspector.decode does."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from None
    pre = preprocessor.config
    info = read_image_info(data)
    captured = (info.height, info.width)
    image, _ = decode_image(data, color=pre.decode_color, min_size=pre.min_decode_size(captured))
    return preprocessor.prepare(image, captured)


@dataclass
class CachedSplit:
    """A split held in memory as prepared uint8 arrays (about 50 KB each at 128x128 RGB)."""

    name: str
    images: list[np.ndarray]
    labels: np.ndarray  # int64 class indices
    paths: list[str]
    skipped: list[str] = field(default_factory=list)  # "path: reason" for unreadable files

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


def load_split(
    dataset: Dataset,
    split: str,
    classes: Sequence[str],
    preprocessor: Preprocessor,
    *,
    threads: int = 2,
    on_image: Callable[[], None] | None = None,
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
        try:
            return load_prepared(dataset.abspath(sample), preprocessor), None
        except (ImageDecodeError, PreprocessError) as exc:
            return None, f"{sample.path}: {exc}"
        finally:
            if on_image is not None:
                on_image()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(work, samples))
    images, labels, paths, skipped = [], [], [], []
    for sample, (img, err) in zip(samples, results, strict=True):
        if err is not None:
            skipped.append(err)
            continue
        images.append(img)
        labels.append(index[sample.label])
        paths.append(sample.path)
    return CachedSplit(split, images, np.asarray(labels, dtype=np.int64), paths, skipped)


class AugmentedImages(TorchDataset):
    """Cached prepared images -> (augmented, normalized CHW float32 tensor, label)."""

    def __init__(self, split: CachedSplit, preprocessor: Preprocessor, augment: Callable | None = None) -> None:
        self.split = split
        self.preprocessor = preprocessor
        self.augment = augment

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.split.images[i]
        if self.augment is not None:
            img = self.augment(image=img)["image"]
            if img.ndim == 2:  # some albumentations ops drop a single channel axis
                img = img[:, :, None]
        x = self.preprocessor.normalize(np.ascontiguousarray(img))
        return torch.from_numpy(x), int(self.split.labels[i])


def stack_normalized(split: CachedSplit, preprocessor: Preprocessor) -> np.ndarray:
    """The whole split as one NCHW float32 array (for evaluation without augmentation)."""
    return np.ascontiguousarray(np.stack([preprocessor.normalize(img) for img in split.images]))
