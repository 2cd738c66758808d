"""Training sees exactly the pixels the predictor serves; augmentation keeps shapes; sampling is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.layout import Dataset
from inspection.predictor import Predictor, Preparer
from inspection.preprocess import PreprocessConfig, Preprocessor
from tests.support import make_tiny_bundle
from tests.training.conftest import CLASSES
from training.augment import build_augment
from training.config import AugmentConfig
from training.data import AugmentedImages, load_prepared, load_split
from training.sampling import EpochSampler, class_weights


@pytest.mark.parametrize("color", ["rgb", "gray"])
def test_prepared_pixels_match_the_predictor(marks_dataset: Dataset, tmp_path, color: str) -> None:
    bundle = make_tiny_bundle(tmp_path / "b", color=color)
    pre = bundle.card.preprocess
    path = marks_dataset.abspath(marks_dataset.split("train")[0])
    served = Predictor(bundle, backend="torch").load(path.read_bytes()).inputs
    prepared, _ = load_prepared(path, Preparer(pre))
    assert prepared.shape == (*pre.input_size, pre.channels)
    np.testing.assert_array_equal(Preprocessor(pre).normalize(prepared), served)


def test_split_cache_and_augmented_shapes(marks_dataset: Dataset) -> None:
    preparer = Preparer(PreprocessConfig(input_size=(24, 40), color="gray", mean=(0.5,), std=(0.25,)))
    pre = preparer.preprocessor
    split = load_split(marks_dataset, "train", CLASSES, preparer)
    assert len(split) == 48 and not split.skipped
    assert np.bincount(split.labels).tolist() == [24, 12, 12]
    ds = AugmentedImages(split, pre, build_augment(AugmentConfig(hflip=1, rotate90=1, noise_p=1, blur_p=1), (24, 40)))
    x, y = ds[0]
    assert tuple(x.shape) == (1, 24, 40) and x.dtype.is_floating_point and y == split.labels[0]


def test_unreadable_images_are_skipped_and_listed(marks_dataset: Dataset, tmp_path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(marks_dataset.root, root)
    ds = Dataset.load(root)
    victim = ds.split("val")[0]
    ds.abspath(victim).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    split = load_split(ds, "val", CLASSES, Preparer(PreprocessConfig(input_size=(24, 40))))
    assert len(split) == 15 and len(split.skipped) == 1 and victim.path in split.skipped[0]


def test_epoch_sampler_is_reproducible_and_shards_cover_the_epoch() -> None:
    labels = np.array([0] * 10 + [1] * 3)
    a = EpochSampler(labels, seed=1)
    a.set_epoch(3)
    b = EpochSampler(labels, seed=1)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    shards = [EpochSampler(labels, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in shards:
        s.set_epoch(3)
    seen = list(shards[0]) + list(shards[1])
    assert len(shards[0]) == len(shards[1]) == 7 and set(seen) == set(range(13))


def test_class_weights_balance_the_loss() -> None:
    w = class_weights(np.array([90, 10, 0]))
    assert w[2] == 0 and w[0] * 90 == pytest.approx(w[1] * 10)
