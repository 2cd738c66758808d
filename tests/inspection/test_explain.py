"""Grad-CAM heatmaps: every architecture, frame resolution, ROI mapping, and (slow, with a
trained model) that the peak lands on the simulated defect far more often than chance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.bundle import Bundle
from inspection.card import MAP_ARCHS, ModelCard, Thresholds
from inspection.explain import Explainer, ExplainError, find_target_layer, peak_hit_rate
from inspection.models import create_model, list_models
from inspection.preprocess import PreprocessConfig
from training.export import save_bundle


def bundle(path: Path, arch: str, *, color: str = "rgb", roi: tuple[int, int, int, int] | None = None) -> Bundle:
    ch = 1 if color == "gray" else 3
    card = ModelCard(name="t", version="", arch=arch, classes=("good", "scratch", "dent"), pass_classes=("good",),
                     preprocess=PreprocessConfig(input_size=(40, 56), color=color, mean=(0.5,) * ch,
                                                 std=(0.25,) * ch, roi=roi),
                     thresholds=Thresholds(fail=0.5))
    torch.manual_seed(0)
    return save_bundle(path, create_model(arch, num_classes=3, in_channels=ch), card, export=False)


@pytest.mark.parametrize("arch", [a for a in list_models() if a not in MAP_ARCHS])  # map networks draw their map
def test_every_architecture_gives_a_heatmap_at_frame_resolution(arch, tmp_path, odd_bgr):
    ex = Explainer(bundle(tmp_path / arch, arch))
    assert ex.layer_name in ("avgpool", "pool.avg")  # the head's pool, not a squeeze-excite pool in a block
    e = ex.explain(odd_bgr)
    assert e.heatmap.shape == (11, 17) and e.heatmap.dtype == np.float32
    assert e.heatmap.min() >= 0.0 and e.heatmap.max() <= 1.0 + 1e-6
    assert e.overlay.shape == (11, 17, 3) and e.overlay.dtype == np.uint8
    x, y = e.peak
    assert e.heatmap[y, x] == e.heatmap.max()
    assert e.target in ("scratch", "dent")  # the default explains a defect class, never the pass class
    assert cv2.imdecode(np.frombuffer(e.overlay_png(), np.uint8), cv2.IMREAD_COLOR).shape == (11, 17, 3)


def test_target_class_is_honoured_and_checked(tmp_path, odd_bgr):
    ex = Explainer(bundle(tmp_path / "m", "resnet18"))
    assert ex.explain(odd_bgr, target="good").target == "good"
    with pytest.raises(ExplainError, match="not one of the model's classes"):
        ex.explain(odd_bgr, target="rust")


def test_gray_model_explains_gray_and_colour_frames(tmp_path, rng):
    ex = Explainer(bundle(tmp_path / "g", "mobilenet_v3_small", color="gray"))
    gray = rng.integers(0, 256, size=(23, 31), dtype=np.uint8)
    a, b = ex.explain_batch([gray, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)])
    assert a.heatmap.shape == b.heatmap.shape == (23, 31) and a.overlay.shape == (23, 31, 3)
    np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)  # same pixels, same evidence


def test_heatmap_covers_only_the_roi(tmp_path, rng):
    roi = (20, 10, 56, 40)  # x, y, w, h in captured pixels
    ex = Explainer(bundle(tmp_path / "r", "resnet18", roi=roi))
    image = rng.integers(0, 256, size=(70, 100, 3), dtype=np.uint8)
    heat = ex.explain(image).heatmap
    assert heat.shape == (70, 100)
    outside = heat.copy()
    outside[10:50, 20:76] = 0
    assert not outside.any() and heat[10:50, 20:76].max() == pytest.approx(1.0)
    # a frame decoded at half resolution: the ROI scales with it
    half = ex.explain(cv2.resize(image, (50, 35)), captured=(70, 100)).heatmap
    assert not half[:5].any() and not half[:, :10].any() and half[5:25, 10:38].max() == pytest.approx(1.0)


def test_target_layer_falls_back_to_the_last_conv():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    name, module, hook_input = find_target_layer(net)
    assert name == "2" and module is net[2] and not hook_input


# -- the real check: a trained model looks at the defect -----------------------------------------------
# Textured plates with one small mark at a random place, mask known. (The camera simulator's flange
# line needs many minutes of CPU training before it localizes: benchmarks/heatmap_hit_rate.py
# measures that; this test must learn in well under a minute.)
SIZE = (96, 128)  # h, w: a 3x4 Grad-CAM grid, so the peak must pick the right cell out of 12


def plate(label: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = SIZE
    img = rng.normal(int(rng.integers(90, 160)), 10, (h, w)).clip(0, 255).astype(np.uint8)
    img = cv2.cvtColor(cv2.GaussianBlur(img, (0, 0), 0.8), cv2.COLOR_GRAY2BGR)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(12, w - 12)), int(rng.integers(12, h - 12))
    if label == "spot":
        cv2.circle(mask, (cx, cy), int(rng.integers(3, 6)), 255, -1)
        img[mask > 0] = 240
    elif label == "scratch":
        angle = rng.uniform(0, np.pi)
        dx, dy = int(9 * np.cos(angle)), int(9 * np.sin(angle))
        cv2.line(mask, (cx - dx, cy - dy), (cx + dx, cy + dy), 255, 2)
        img[mask > 0] = 25
    return img, mask


@pytest.fixture(scope="session")
def trained_plate_bundle(tmp_path_factory) -> Bundle:
    """A mobilenet_v3_small really trained from scratch to tell good plates from spots and scratches."""
    pytest.importorskip("training")
    from datasets.layout import Dataset, DatasetInfo, Sample, sha256_bytes
    from inspection.bundle import load_bundle
    from training import TrainConfig, train

    root = tmp_path_factory.mktemp("plates") / "data"
    rng = np.random.default_rng(0)
    samples = []
    for split, n in (("train", 80), ("val", 20), ("test", 20)):
        for label, k in (("good", 2 * n), ("spot", n), ("scratch", n)):
            (root / "images" / label).mkdir(parents=True, exist_ok=True)
            for i in range(k):
                data = cv2.imencode(".png", plate(label, rng)[0])[1].tobytes()
                (root / "images" / label / f"{split}{i}.png").write_bytes(data)
                samples.append(Sample(f"images/{label}/{split}{i}.png", label, split, sha256_bytes(data)))
    Dataset(root, DatasetInfo(("good", "spot", "scratch")), samples).save()
    result = train(TrainConfig(data=str(root), out=str(root.parent / "run"), input_size=SIZE, epochs=15, lr=2e-3,
                               patience=0, threads=2, time_limit_min=4), progress=False)
    return load_bundle(result.bundle_path)


@pytest.mark.slow
def test_heatmap_peak_lands_on_the_defect(trained_plate_bundle):
    rng = np.random.default_rng(99)  # frames the model never saw
    pairs = [plate(label, rng) for label in ("spot", "scratch") for _ in range(40)]
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    ex = Explainer(trained_plate_bundle, threads=1)
    strict = peak_hit_rate(ex, images, masks)
    near = peak_hit_rate(ex, images, masks, tolerance=16)  # half a 32-pixel feature cell
    print(f"heatmap peak on the defect {strict.rate:.1%} (chance {strict.chance:.2%}); within 16 px "
          f"{near.rate:.1%} (chance {near.chance:.1%})")
    assert near.chance < 0.15  # the marks are small: landing near one is no accident
    assert near.rate > 0.5 and near.rate > 3 * near.chance
    assert strict.rate > 5 * strict.chance
