"""``calibrate --reviewed``: the verdicts QA labelled join the scores the bundle was calibrated on, and move
the thresholds the way they should: a missed defect lowers the review threshold, a false alarm on a good
part raises the fail threshold. Real bundle, real images, real sample store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.intake import SampleIntake, SampleOrigin
from defectscope.cli import app
from inspection.atomic import write_text_atomic
from inspection.bundle import CARD, load_bundle
from inspection.card import ModelCard
from inspection.models import create_model
from inspection.predictor import Predictor
from inspection.preprocess import PreprocessConfig
from tests.support import encode, make_tiny_bundle
from training.calibration import CalibrationError, LabelledScores
from training.export import save_bundle
from training.recalibrate import recalibrate_bundle


def _images(n: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        img = np.full((40, 56, 3), 30 + 200 * i // n, np.uint8)  # dark to bright: a spread of scores
        img = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
        out.append(encode(img))
    return out


def _spread_bundle(path: Path):
    """A random defectnet whose defect score follows the image (0.06-0.31 on ``_images``): an untrained
    network's scores sit in a narrow band, so its last layer is stretched and biased towards good."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = create_model("defectnet", num_classes=3, in_channels=3)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(30)
        last.bias.zero_()
        last.bias[0] = 1.0
    card = ModelCard(name="spread", version="", arch="defectnet", classes=("good", "scratch", "dent"),
                     pass_classes=("good",), preprocess=PreprocessConfig((40, 56), "rgb", (0.5,) * 3, (0.25,) * 3))
    return save_bundle(path, model.eval(), card)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[bytes], np.ndarray]:
    bundle = _spread_bundle(tmp_path / "bundle")
    images = _images(24)
    predictor = Predictor(bundle)
    scores = np.array([predictor.inspect(b).verdict.defect_score for b in images])
    # the card's pool: defects above the images' median, good below it but for a few just above (so a
    # review band forms), and the images' extremes beyond both thresholds: news on either side
    mid = float(np.median(scores))
    up, down = float(scores.max()) - mid, mid - float(scores.min())
    rng = np.random.default_rng(0)
    pool = LabelledScores(np.r_[mid + up * rng.uniform(0.02, 1, 40), mid - down * rng.uniform(0.02, 1, 190),
                                mid + up * rng.uniform(0.02, 0.3, 10)],
                          np.r_[np.ones(40, bool), np.zeros(200, bool)], "val split")
    card = bundle.card.with_(metrics={"calibration_pool": pool.to_dict()})
    write_text_atomic(bundle.path / CARD, card.to_json())
    return bundle.path, images, scores


def _store(root: Path, items: list[tuple[bytes, str]]) -> Path:
    intake = SampleIntake(root, known_classes=("good", "scratch", "dent"))
    for k, (data, label) in enumerate(items):
        intake.add(data, label, origin=SampleOrigin(via="verdict", verdict_id=k + 1))
    intake.add(_images(30)[-1], "good", origin=SampleOrigin(via="cli"))  # not a reviewed verdict: left out
    return root


def test_reviewed_escapes_lower_review_and_false_alarms_raise_fail(setup, tmp_path: Path) -> None:
    bundle, images, scores = setup
    before, _ = recalibrate_bundle(bundle, None, out=tmp_path / "b0")
    order = np.argsort(scores)
    low, high = order[:4], order[-4:]
    assert scores[low].max() < before.thresholds.review < before.thresholds.fail < scores[high].min()
    store = _store(tmp_path / "store", [(images[i], "scratch") for i in low] + [(images[i], "good") for i in high])
    after, card = recalibrate_bundle(bundle, None, out=tmp_path / "b1", reviewed=store)
    assert after.defects == before.defects + 4 and after.good == before.good + 4
    assert "8 reviewed verdicts" in after.source
    assert after.thresholds.review <= scores[low].min()  # the missed defects are caught now
    assert after.thresholds.fail > before.thresholds.fail  # the false alarms go to review, not auto-fail
    assert card.version == load_bundle(bundle).card.version  # same weights
    assert len(LabelledScores.from_dict(card.metrics["calibration_pool"]).scores) == len(scores[low]) * 2 + 240


def test_cli_calibrate_reviewed(setup, tmp_path: Path) -> None:
    bundle, images, scores = setup
    store = _store(tmp_path / "store", [(images[int(np.argmin(scores))], "dent")])
    res = CliRunner().invoke(app, ["calibrate", "--model", str(bundle), "--reviewed", str(store),
                                   "--out", str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    assert "1 reviewed verdicts" in res.output and "95% exact intervals" in res.output
    assert "bounds recall at >=" in res.output


def test_nothing_to_calibrate_on_is_refused(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle")  # no calibration pool in its card, no --data
    with pytest.raises(CalibrationError, match="give --data"):
        recalibrate_bundle(bundle.path, None, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
