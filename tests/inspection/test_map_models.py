"""Defect-map models: the frame's defect score is its hottest cell, regions land in frame pixels,
and both backends agree on the map."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inspection.predictor import Predictor  # noqa: E402
from inspection.regions import MapGeometry, find_regions, map_heat  # noqa: E402
from inspection.segdec import SegDecNet, WithProbsAndMap  # noqa: E402
from tests.support import crack_frame, encode, make_map_bundle  # noqa: E402


def test_the_defect_mass_is_the_hottest_cell_and_any_input_size_runs() -> None:
    torch.manual_seed(0)
    net = WithProbsAndMap(SegDecNet(num_classes=3, in_channels=1, map_channels=2, defect=[False, True, True]).eval())
    for h, w in ((64, 64), (96, 160)):
        probs, maps = net(torch.randn(2, 1, h, w))
        assert maps.shape == (2, 2, h // 8, w // 8)
        assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-6)
        assert torch.allclose(probs[:, 1:].sum(1), maps.flatten(1).amax(1), atol=1e-6)


def test_regions_come_back_in_camera_pixels_through_scale_and_crop() -> None:
    maps = np.zeros((2, 8, 10), np.float32)
    maps[1, 3, 4] = 0.9  # one hot cell of the second class
    maps[0, 3, 5] = 0.7
    geo = MapGeometry(box=(100, 50, 160, 128), model=(64, 80))  # ROI at (100, 50), scale 0.5
    (r,) = find_regions(maps, ("crack", "pit"), geo, threshold=0.6)
    # cells 4..5 of 8 px at scale 0.5 = 16 camera px each: x 100 + 64 .. 100 + 96, y 50 + 48 .. 50 + 64
    assert r.box == (164, 98, 32, 16) and r.label == "pit" and r.peak == pytest.approx(0.9)
    assert r.peak_xy == (172, 106) and r.area == 2 * 16 * 16
    assert find_regions(maps, ("crack", "pit"), geo, threshold=0.95) == ()
    heat = map_heat(maps, geo, frame=(200, 300), out=(100, 150))
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert abs(x - 172 / 2) <= 2 and abs(y - 106 / 2) <= 2


@pytest.fixture(scope="module")
def map_bundle(tmp_path_factory):
    frame = crack_frame()
    return make_map_bundle(tmp_path_factory.mktemp("map") / "b", frame), frame


def test_a_failing_frame_names_where_and_both_backends_agree(map_bundle) -> None:
    bundle, frame = map_bundle
    verdicts = {}
    for backend in ("torch", "onnx"):
        item = Predictor(bundle, backend=backend, threads=1).inspect(encode(frame))
        v = item.verdict
        assert v.outcome.value == "fail" and v.regions, backend
        x, y, w, h = v.regions[0].box
        assert x >= 0 and y >= 0 and x + w <= frame.shape[1] and y + h <= frame.shape[0]
        px, py = v.regions[0].peak_xy
        assert x <= px < x + w and y <= py < y + h
        assert v.to_dict()["regions"][0]["box"] == [x, y, w, h]
        verdicts[backend] = v
    assert verdicts["torch"].regions[0].box == verdicts["onnx"].regions[0].box
    assert verdicts["torch"].defect_score == pytest.approx(verdicts["onnx"].defect_score, abs=1e-4)


def test_regions_exactly_when_the_frame_does_not_pass(map_bundle) -> None:
    """The score is the hottest cell and regions are the cells at the threshold: a fail always shows
    where, and a pass never draws a box."""
    bundle, _ = map_bundle
    p = Predictor(bundle, threads=1)
    frames = [crack_frame(seed=s, at=(60 + 40 * s, 80)) for s in range(6)] + [np.full((300, 420), v, np.uint8)
                                                                              for v in (20, 128, 240)]
    outcomes = []
    for f in frames:
        v = p.inspect(encode(f)).verdict
        outcomes.append(v.outcome.value)
        assert bool(v.regions) == (v.outcome.value != "pass")
        if v.regions:
            assert v.regions[0].peak == pytest.approx(v.defect_score, abs=1e-5)
    assert "pass" in outcomes


@pytest.mark.parametrize("defect", [[False, True], [False, True, True]])
def test_tiles_give_the_one_pass_answer(defect) -> None:
    from inspection.runtime import Output
    from inspection.tiling import starts, tiled_infer

    torch.manual_seed(1)
    net = WithProbsAndMap(SegDecNet(num_classes=len(defect), in_channels=1, map_channels=sum(defect),
                                    defect=defect).eval())

    def infer(x: np.ndarray) -> Output:
        with torch.no_grad():
            probs, maps = net(torch.from_numpy(x))
        return Output(probs.numpy(), maps.numpy())

    x = np.random.default_rng(0).standard_normal((2, 1, 608, 880)).astype(np.float32)
    whole, tiled = infer(x), tiled_infer(infer, x, 256, defect)
    assert starts(608, 256) == [0, 128, 256, 352] and len(starts(880, 256)) == 6  # really tiled, overlapping
    np.testing.assert_allclose(tiled.maps, whole.maps, atol=1e-5)
    defect_mass = lambda p: p[:, np.asarray(defect)].sum(1)  # noqa: E731
    np.testing.assert_allclose(defect_mass(tiled.probs), defect_mass(whole.probs), atol=1e-5)
    if sum(defect) == 1:
        np.testing.assert_allclose(tiled.probs, whole.probs, atol=1e-5)


def test_a_card_that_tiles_answers_as_one_pass(map_bundle, tmp_path) -> None:
    from dataclasses import replace

    from inspection.bundle import build_model
    from training.export import save_bundle

    bundle, frame = map_bundle
    model = build_model(bundle.card)
    model.load_state_dict(bundle.state_dict())
    big = np.tile(frame, (2, 2))  # 600x840 at scale 0.5: 304x432 model pixels, tiled in 160-px tiles
    card = bundle.card.with_(preprocess=replace(bundle.card.preprocess, tile=160))
    tiled = save_bundle(tmp_path / "tiled", model.eval(), card, export=False)
    one, parts = (Predictor(b, backend="torch", threads=1).inspect(encode(big)).verdict for b in (bundle, tiled))
    assert parts.defect_score == pytest.approx(one.defect_score, abs=1e-5)
    assert [r.box for r in parts.regions] == [r.box for r in one.regions] and parts.outcome == one.outcome
