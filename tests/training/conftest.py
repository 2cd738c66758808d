"""A small labelled dataset in the project layout: textured plates, some with a scratch or a spot.

Used where the simulator's realism is not the point (config, resume, DDP); the learning test
uses the simulator itself when datasets.synth is available.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.layout import Dataset, DatasetInfo, Sample, sha256_bytes

CLASSES = ("good", "scratch", "spot")


def draw(label: str, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    base = rng.integers(100, 150)
    img = np.clip(rng.normal(base, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    if label == "scratch":
        x0, y0 = rng.integers(0, w // 3), rng.integers(0, h)
        x1, y1 = rng.integers(2 * w // 3, w), rng.integers(0, h)
        cv2.line(img, (int(x0), int(y0)), (int(x1), int(y1)), (20, 20, 20), 2)
    elif label == "spot":
        c = (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8)))
        cv2.circle(img, c, int(rng.integers(3, 6)), (245, 245, 245), -1)
    return img


def make_marks_dataset(root: Path, per_class: dict[str, dict[str, int]], size: tuple[int, int] = (41, 53),
                       seed: int = 0) -> Dataset:
    """``per_class``: split -> {label: count}. Images are PNG, odd-sized (h, w) so swaps show."""
    rng = np.random.default_rng(seed)
    samples = []
    for split, counts in per_class.items():
        for label, n in counts.items():
            folder = root / "images" / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                data = cv2.imencode(".png", draw(label, rng, size))[1].tobytes()
                name = f"{split}_{i:04d}.png"
                (folder / name).write_bytes(data)
                samples.append(Sample(f"images/{label}/{name}", label, split, sha256_bytes(data)))
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
    })
