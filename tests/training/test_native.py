"""The native-resolution recipe: chosen (and explained) for large frames with small masked defects,
trained on crops, and bundled as a whole-frame defect-map model whose ONNX export has the map."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from datasets.layout import Dataset, DatasetInfo
from inspection.bundle import load_bundle
from inspection.predictor import Predictor
from tests.training.conftest import make_marks_dataset
from training.config import TrainConfig, TrainConfigError
from training.recipe import choose, measure, native_scale, resolve
from training.trainer import train

SPLITS = {"train": {"good": 8, "scratch": 6, "spot": 6}, "val": {"good": 4, "scratch": 2, "spot": 2},
          "test": {"good": 2, "scratch": 1, "spot": 1}}


def test_large_frames_with_thin_masked_defects_get_the_native_recipe(tmp_path) -> None:
    ds = make_marks_dataset(tmp_path / "big", SPLITS, size=(192, 640), masks=True)
    c = choose(measure(ds, ("good",)), 160, "none")
    assert c.recipe == "native" and c.scale == 1.0
    assert "native recipe" in c.reason and "640x192" in c.reason
    config, why = resolve(TrainConfig(data=str(ds.root), out=str(tmp_path / "r"), fixture="none"), ds)
    assert (config.arch, config.epochs, config.patience, config.monitor) == ("segdec", 120, 0, "last")
    assert config.crop == 192 and config.input_size == (192, 192) and why == c.reason
    # told otherwise, it obeys; what the user set stays set
    config, _ = resolve(TrainConfig(data=str(ds.root), out="x", recipe="whole-frame", epochs=3, fixture="none"), ds)
    assert (config.arch, config.epochs) == ("defectnet", 3)
    with pytest.raises(TrainConfigError, match="native"):
        resolve(TrainConfig(data=str(ds.root), out="x", recipe="native", arch="resnet18", fixture="none"), ds)


def test_whole_frame_stays_where_it_is_better_and_says_why(tmp_path) -> None:
    small = make_marks_dataset(tmp_path / "small", SPLITS, size=(41, 53), masks=True)
    assert choose(measure(small, ("good",)), 160, "none").recipe == "whole-frame"  # defects stay visible when shrunk
    unmasked = make_marks_dataset(tmp_path / "nomask", SPLITS, size=(192, 640), masks=False)
    c = choose(measure(unmasked, ("good",)), 160, "none")
    assert c.recipe == "whole-frame" and "0 of 12 defect images have a mask" in c.reason
    big = make_marks_dataset(tmp_path / "big", SPLITS, size=(192, 640), masks=True)
    assert "fixture" in choose(measure(big, ("good",)), 160, "bright").reason


def test_native_scale_keeps_the_thinnest_defects_four_pixels_wide() -> None:
    assert native_scale(40) == 0.125 and native_scale(16) == 0.25 and native_scale(11) == 0.5
    assert native_scale(2) == 1.0


def test_native_training_bundles_a_whole_frame_map_model(tmp_path) -> None:
    ds = make_marks_dataset(tmp_path / "big", SPLITS, size=(144, 400), masks=True)
    ds = Dataset(ds.root, DatasetInfo(ds.info.classes, ("good",)), ds.samples)
    ds.save()
    cfg = TrainConfig(data=str(ds.root), out=str(tmp_path / "run"), epochs=2, crop=64, threads=2)
    result = train(cfg, progress=False)
    bundle = load_bundle(result.bundle_path)
    card = bundle.card
    assert card.arch == "segdec" and card.has_map and card.preprocess.scale == 1.0
    assert card.preprocess.input_size == (64, 64) and card.preprocess.color == "rgb"
    assert card.extra["training"]["recipe"] == "native" and card.extra["training"]["crop"] == 64
    graph = onnx.load(str(bundle.path / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["probs", "map"]
    frame = (bundle.path / ".." / ".." / "big" / ds.split("test")[0].path).resolve()
    data = frame.read_bytes()
    onnx_v = Predictor(bundle, backend="onnx", threads=1).inspect(data).verdict
    torch_v = Predictor(bundle, backend="torch", threads=1).inspect(data).verdict
    assert onnx_v.defect_score == pytest.approx(torch_v.defect_score, abs=1e-4)
    assert [r.box for r in onnx_v.regions] == [r.box for r in torch_v.regions]
    assert bool(onnx_v.regions) == (onnx_v.outcome.value != "pass")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["recipe"] == "native" and saved["scale"] == 1.0
    assert np.isfinite(result.val_metrics["accuracy"])


def test_a_map_model_fine_tunes_with_a_new_defect_class(tmp_path) -> None:
    import torch

    from tests.support import crack_frame, make_map_bundle
    from training.model_init import from_bundle

    parent = make_map_bundle(tmp_path / "p", crack_frame(), onnx=False)  # good / crack / pit
    model, card = from_bundle(str(parent.path), ("good", "crack", "pit", "burr"), ("good",))
    old = parent.state_dict()
    new = model.state_dict()
    backbone = [k for k in old if k.startswith(("stem.", "stage"))]
    assert backbone and all(torch.equal(new[k], old[k]) for k in backbone)  # everything it learnt is kept
    assert new["seg.1.weight"].shape[0] == 3  # one map channel per defect class, the new one fresh
    assert torch.equal(new["seg.1.weight"][:2], old["seg.1.weight"]) and card.arch == "segdec"
