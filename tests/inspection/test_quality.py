"""The image-quality gate: limits learned from simulator frames; real OpenCV blur and darkening of
held-out frames are refused as invalid (never a pass), good frames go through."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from datasets.simulator import GOOD, Simulator
from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.models import create_model
from inspection.predictor import Predictor, Preparer
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityError, QualityGate, QualityLimits, learn_limits
from inspection.types import Outcome
from tests.support import encode
from training.export import save_bundle

SIZE = (203, 254)  # odd, camera aspect
PRE = PreprocessConfig(input_size=(51, 64))


def _frames(recipe: str, seeds: range) -> list[np.ndarray]:
    sim = Simulator(recipe, size=SIZE)
    return [sim.render(GOOD if s % 3 else "scratch", seed=s).image for s in seeds]


def _decoded(img: np.ndarray, pre: PreprocessConfig = PRE) -> np.ndarray:
    return Preparer(pre).decode(encode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 92]))[0]


@pytest.fixture(scope="module")
def limits() -> QualityLimits:
    return learn_limits([_decoded(f) for f in _frames("flange", range(40))], PRE)


@pytest.fixture(scope="module")
def held_out() -> list[np.ndarray]:
    return _frames("flange", range(1000, 1016))


def test_held_out_good_frames_pass_the_gate(limits, held_out):
    gate = QualityGate(limits, PRE)
    results = [gate.check(_decoded(f)) for f in held_out]
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert limits.part is not None and limits.images == 40  # a flange on a belt: the framing check is on


def test_blurred_frames_are_refused_as_out_of_focus(limits, held_out):
    gate = QualityGate(limits, PRE)
    sigma = 1.2 * SIZE[1] / PRE.input_size[1]  # a lens out of focus by ~1 model-input pixel
    for f in held_out:
        r = gate.check(_decoded(cv2.GaussianBlur(f, (0, 0), sigma)))
        assert not r.ok and r.code == "blurred", r
        assert "focus" in r.reason and "retake" in r.reason


def test_dark_saturated_and_empty_frames_are_refused(limits, held_out):
    gate = QualityGate(limits, PRE)
    for f in held_out[:6]:
        assert gate.check(_decoded(cv2.convertScaleAbs(f, alpha=0.35))).code == "too_dark"
        assert gate.check(_decoded(cv2.convertScaleAbs(f, alpha=3.0))).code in ("too_bright", "saturated")
    belt = np.full(SIZE, 60, np.uint8)
    cv2.randn(belt, 60, 4)
    assert gate.check(_decoded(belt)).code == "part_not_found"
    shifted = np.roll(held_out[0], SIZE[1] // 3, axis=1)  # the part slid along the fixture
    assert gate.check(_decoded(shifted)).code in ("part_off_centre", "part_not_found")


def test_a_texture_filling_the_frame_has_no_framing_check():
    lim = learn_limits([_decoded(f) for f in _frames("steel", range(24))], PRE)
    assert lim.part is None and lim.offset_max is None
    gate = QualityGate(lim, PRE)
    assert all(gate.check(_decoded(f)).ok for f in _frames("steel", range(500, 506)))


def test_too_few_images_cannot_teach_limits():
    with pytest.raises(QualityError, match="at least 20"):
        learn_limits([np.zeros((11, 17), np.uint8)] * 5, PRE)


def test_limits_ride_in_the_card_and_old_cards_still_load(limits, tmp_path):
    card = ModelCard(name="q", version="", arch="mobilenet_v3_small", classes=("good", "scratch"),
                     pass_classes=("good",), preprocess=PRE, quality=limits)
    bundle = save_bundle(tmp_path / "b", create_model("mobilenet_v3_small", num_classes=2).eval(), card, export=False)
    assert load_bundle(bundle.path).card.quality == limits
    raw = card.to_dict()
    raw.pop("quality")
    assert ModelCard.from_dict(raw).quality is None
    raw["preprocess"]["window"] = None  # the 0.x cards' unused native fixture window
    assert ModelCard.from_dict(raw).preprocess == PRE


def test_the_predictor_gives_invalid_never_pass_whatever_the_classifier_says(limits, held_out, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    card = ModelCard(name="q", version="", arch="mobilenet_v3_small", classes=("good", "scratch"),
                     pass_classes=("good",), preprocess=PRE, quality=limits)
    bundle = save_bundle(tmp_path / "b", create_model("mobilenet_v3_small", num_classes=2).eval(), card, export=False)
    calls: list[int] = []

    def backend(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return np.tile([[0.99, 0.01]], (len(batch), 1)).astype(np.float32)  # "good" for everything

    backend.name = "fake"  # type: ignore[attr-defined]
    p = Predictor(bundle, backend=backend)
    good = p.load(encode(held_out[0], ".jpg"))
    dark = p.load(encode(cv2.convertScaleAbs(held_out[1], alpha=0.3), ".jpg"), source="cam-1")
    blur = p.load(encode(cv2.GaussianBlur(held_out[2], (0, 0), 6), ".jpg"))
    verdicts = [it.verdict for it in p.run([good, dark, blur])]
    assert [v.outcome for v in verdicts] == [Outcome.PASS, Outcome.INVALID, Outcome.INVALID]
    assert calls == [3]  # every frame is classified (the scores are kept), the gate decides
    assert verdicts[1].label == "too_dark" and "dark" in verdicts[1].reason and verdicts[1].confidence == 0.0
    assert verdicts[1].to_dict()["verdict"] == "invalid" and verdicts[1].source == "cam-1"
    assert verdicts[1].scores["good"] == pytest.approx(0.99)  # its "good" is overruled by the gate
    assert set(verdicts[1].timings_ms) >= {"decode", "quality", "preprocess", "inference", "decision"}


