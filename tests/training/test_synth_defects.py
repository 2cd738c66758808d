"""Synthesized defects: each kind draws a visible defect with a mask that covers it, on clean images only,
reproducibly, and composes with the augmentation pipeline (geometry moves image and mask together)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.layout import Dataset, DatasetInfo, Sample
from inspection.card import ANOMALY
from training.augment import build_augment
from training.calibration import calibrate
from training.config import AugmentConfig
from training.data_view import good_only_view
from training.synth_defects import KINDS, AnomalyLabels, SynthesizedDefects
from training.synth_shapes import perlin


def plate(seed: int = 0, size: tuple[int, int] = (96, 112), channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(128, 30, (*size, channels)).astype(np.float32), (0, 0), 2)
    return np.clip(base.reshape(*size, channels), 0, 255).astype(np.uint8)


def draw(kind: str, image: np.ndarray, seed: int, textures=()) -> tuple[np.ndarray, np.ndarray]:
    t = SynthesizedDefects(kinds=(kind,), textures=textures, p=1.0)
    t.set_random_seed(seed)
    out = t(image=image, mask=np.zeros(image.shape[:2], np.uint8), clean=True)
    return out["image"], out["mask"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_kind_draws_inside_its_mask(kind: str, channels: int) -> None:
    image = plate(channels=channels)
    drawn = 0
    for seed in range(6):
        out, mask = draw(kind, image, seed, textures=[plate(9, channels=channels)])
        assert out.shape == image.shape and out.dtype == np.uint8 and mask.shape == image.shape[:2]
        assert set(np.unique(mask)) <= {0, 1}
        if not mask.any():
            assert np.array_equal(out, image)  # no mask, no change: a clean image stays clean
            continue
        drawn += 1
        change = np.abs(out.astype(np.int16) - image).max(axis=2)
        near = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
        assert change[mask > 0].mean() > 3, "the defect must be visible where its mask says"
        # what changed lies at the defect (painters soften their edges a few pixels beyond the mask)
        assert change[~near].sum() <= 0.05 * change.sum() + 1
    assert drawn >= 4, f"{kind} drew a defect in only {drawn} of 6 tries"


def test_only_clean_images_get_a_defect() -> None:
    image = plate()
    t = SynthesizedDefects(p=1.0)
    real = np.zeros(image.shape[:2], np.uint8)
    real[10:20, 10:30] = 1
    out = t(image=image, mask=real)  # a real defect's mask: left alone
    assert np.array_equal(out["image"], image) and np.array_equal(out["mask"], real)
    out = t(image=image, mask=np.zeros_like(real), clean=False)  # the caller says: not a good image
    assert np.array_equal(out["image"], image) and not out["mask"].any()


def test_reproducible_per_seed_and_composes_with_geometry() -> None:
    image = plate(size=(80, 80))
    cfg = AugmentConfig(hflip=1.0, vflip=0.0, rotate90=0.0, brightness_contrast_p=0.0, blur_p=0.0, noise_p=0.0)
    runs = []
    for _ in range(2):
        pipe = build_augment(cfg, (80, 80), seed=5, first=SynthesizedDefects(kinds=("cutpaste",), p=1.0))
        runs.append(pipe(image=image, mask=np.zeros((80, 80), np.uint8), clean=True))
    assert np.array_equal(runs[0]["image"], runs[1]["image"]) and np.array_equal(runs[0]["mask"], runs[1]["mask"])
    out = runs[0]
    assert out["mask"].any()
    flipped = image[:, ::-1]  # the flip ran after the defect: image and mask flipped together
    changed = np.abs(out["image"].astype(np.int16) - flipped).max(axis=2) > 0
    assert not (changed & (out["mask"] == 0)).any()


def test_perlin_noise_is_smooth_and_bounded() -> None:
    n = perlin((64, 96), (4, 6), np.random.default_rng(0))
    assert n.shape == (64, 96) and np.abs(n).max() <= 1.5 and n.std() > 0.1
    assert np.abs(np.diff(n, axis=1)).max() < 0.3  # gradient noise: no jumps between neighbours


def test_anomaly_labels() -> None:
    labels = AnomalyLabels.of(("good", "scratch", ANOMALY), ("good",))
    mask = np.zeros((4, 4), np.uint8)
    assert labels.after(0, mask) == 0 and labels.after(1, None) == 1
    mask[1, 1] = 1
    assert labels.after(0, mask) == 2 and labels.after(1, mask) == 1  # a real defect keeps its class
    assert labels.expected_counts(np.array([100, 10, 0]), 0.5).tolist() == [50, 10, 50]


def test_good_only_view_and_calibration() -> None:
    rows = [Sample(f"i/{k}.png", lab, split) for k, (lab, split) in enumerate(
        [("good", "train")] * 4 + [("scratch", "train"), ("good", "val"), ("scratch", "val"), ("good", "test"),
                                   ("scratch", "test")])]
    view = good_only_view(Dataset(Path("/nowhere"), DatasetInfo(("good", "scratch")), rows), asked=True)
    assert view.info.classes == ("good", ANOMALY)
    assert [s.label for s in view.split("train")] == ["good"] * 4 and [s.label for s in view.split("val")] == ["good"]
    test = view.split("test")
    assert [s.label for s in test] == ["good", ANOMALY] and test[1].extra["given_label"] == "scratch"
    assert "2 defect images" in view.info.extra["view"]["good_only"]
    good = np.random.default_rng(0).beta(1, 20, 400)
    cal = calibrate(good, np.zeros(400, bool), good_only=True)
    assert cal.mode == "good-only" and cal.defect_recall is None and cal.false_reject_rate <= 0.01
    assert 0.03 <= cal.review_rate <= 0.05 and cal.thresholds.review < cal.thresholds.fail
    single = calibrate(good, np.zeros(400, bool), good_only=True, review_false_reject=None)
    assert single.thresholds.review is None and single.thresholds.fail == cal.thresholds.fail
