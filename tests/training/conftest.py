"""A small labelled dataset in the project layout: textured plates, some with a scratch or a spot.

Used where the simulator's realism is not the point (config, resume, DDP); a learning test uses
the simulator itself.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.layout import Dataset, DatasetInfo, Sample, sha256_bytes

CLASSES = ("good", "scratch", "spot")


def draw(label: str, rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(image, defect mask 0/255)."""
    h, w = size
    base = rng.integers(100, 150)
    img = np.clip(rng.normal(base, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    if label == "scratch":
        x0, y0 = rng.integers(0, w // 3), rng.integers(0, h)
        x1, y1 = rng.integers(2 * w // 3, w), rng.integers(0, h)
        for target, value in ((img, (20, 20, 20)), (mask, 255)):
            cv2.line(target, (int(x0), int(y0)), (int(x1), int(y1)), value, 2)
    elif label == "spot":
        c, r = (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8))), int(rng.integers(3, 6))
        for target, value in ((img, (245, 245, 245)), (mask, 255)):
            cv2.circle(target, c, r, value, -1)
    return img, mask


def make_marks_dataset(root: Path, per_class: dict[str, dict[str, int]], size: tuple[int, int] = (41, 53),
                       seed: int = 0, masks: bool = False) -> Dataset:
    """``per_class``: split -> {label: count}. Images are PNG, odd-sized (h, w) so swaps show; with
    ``masks`` the defects' masks too (training then adds the mask loss)."""
    rng = np.random.default_rng(seed)
    samples = []
    for split, counts in per_class.items():
        for label, n in counts.items():
            folder = root / "images" / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img, mask = draw(label, rng, size)
                data = cv2.imencode(".png", img)[1].tobytes()
                name = f"{split}_{i:04d}.png"
                (folder / name).write_bytes(data)
                mask_path = ""
                if masks and label != "good":
                    mask_path = f"masks/{label}/{name}"
                    (root / mask_path).parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / mask_path), mask)
                samples.append(Sample(f"images/{label}/{name}", label, split, sha256_bytes(data), mask=mask_path))
    ds = Dataset(root, DatasetInfo(CLASSES), samples)
    ds.save()
    return ds


@pytest.fixture(scope="session")
def marks_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("marks") / "data"
    return make_marks_dataset(root, {
        "train": {"good": 24, "scratch": 12, "spot": 12},
        "val": {"good": 8, "scratch": 4, "spot": 4},
        "test": {"good": 8, "scratch": 4, "spot": 4},
    }, masks=True)  # so resume, DDP and the CLI run the training-only mask head too
