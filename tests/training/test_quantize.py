"""INT8 with a gate (training/quantize.py): written only when it agrees with the float model; a
model made to disagree is refused and the bundle left untouched; ``auto`` takes the fastest
backend export measured here."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.layout import Dataset, DatasetInfo, Sample, sha256_bytes
from inspection.bundle import ONNX_INT8, load_bundle
from inspection.card import Thresholds
from inspection.predictor import Item, Predictor
from inspection.runtime import create_backend
from inspection.types import Outcome, Verdict
from tests.plant_network import splitting_bundle
from tests.serving.conftest import jpeg
from training.export import save_bundle
from training.quantize import QuantizationRefused, _gate, quantize_bundle

IMAGES = [jpeg(i) for i in range(80)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("q") / "data"
    samples = []
    for i, data in enumerate(IMAGES):
        label = "good" if i % 2 else "scratch"
        (root / "images" / label).mkdir(parents=True, exist_ok=True)
        (root / "images" / label / f"{i}.jpg").write_bytes(data)
        samples.append(Sample(f"images/{label}/{i}.jpg", label, "val" if i < 60 else "train", sha256_bytes(data)))
    Dataset(root, DatasetInfo(("good", "scratch", "dent")), samples).save()
    return root


@pytest.fixture
def on_the_threshold(tmp_path: Path) -> Path:
    """An untrained network whose scores all lie within 0.02 of its threshold."""
    return splitting_bundle(tmp_path / "edge", IMAGES[:60])


def test_an_int8_graph_that_disagrees_is_refused_and_the_bundle_left_as_it_was(on_the_threshold: Path,
                                                                              dataset: Path, monkeypatch) -> None:
    """Calibrated on wrongly preprocessed images (a tenth of their range, the classic INT8 breakage),
    the graph saturates and its verdicts flip: the gate must refuse it."""
    import training.quantize as q

    real = q._Reader.get_next
    monkeypatch.setattr(q._Reader, "get_next", lambda self: (lambda d: d and {"input": d["input"] * 0.1})(real(self)))
    before = {f.name: f.read_bytes() for f in on_the_threshold.iterdir()}
    with pytest.raises(QuantizationRefused, match=r"agree on .*% of 60 validation images") as err:
        quantize_bundle(on_the_threshold, dataset, threads=1)
    assert "minmax:" in str(err.value) and "percentile:" in str(err.value)  # both calibrations tried
    assert "float fail" in str(err.value) or "float pass" in str(err.value)  # it lists what disagreed
    assert {f.name: f.read_bytes() for f in on_the_threshold.iterdir()} == before
    assert load_bundle(on_the_threshold).int8_path is None


def test_a_model_that_agrees_gets_its_int8_graph_and_auto_takes_the_fastest(on_the_threshold: Path,
                                                                            dataset: Path, tmp_path: Path) -> None:
    b = load_bundle(on_the_threshold)  # the same network with its threshold far from every score
    clear = save_bundle(tmp_path / "clear", b.build_torch_model(), replace(b.card, version="",
                        thresholds=Thresholds(fail=0.3, review=None)))
    run = CliRunner().invoke(_app(), ["export", str(clear.path), "--int8", "--data", str(dataset), "--threads", "1"])
    assert run.exit_code == 0, run.output
    assert "INT8 written" in run.output and "onnx-int8" in run.output and "<- auto" in run.output
    bundle = load_bundle(clear.path)  # hashes verified, the INT8 file among them
    assert bundle.int8_path is not None and ONNX_INT8 in bundle.card.files
    rec = bundle.card.extra["int8"]
    assert rec["agreement"] >= 0.995 and rec["images"] == 60 and rec["defects_passed_by_int8"] == 0
    float_v = [it.verdict for it in Predictor(bundle, backend="onnx", threads=1).run(
        [Predictor(bundle, backend="onnx", threads=1).load(d) for d in IMAGES[:20]])]
    int8 = Predictor(bundle, backend="onnx-int8", threads=1)
    int8_v = [it.verdict for it in int8.run([int8.load(d) for d in IMAGES[:20]])]
    assert [v.outcome for v in int8_v] == [v.outcome for v in float_v]
    assert np.allclose([v.defect_score for v in int8_v], [v.defect_score for v in float_v], atol=0.05)
    timed = bundle.card.extra["backends"]
    assert set(timed["ms"]) >= {"onnx", "onnx-int8", "torch"}
    assert create_backend(bundle, "auto").name == timed["fastest"]
    other = json.loads((clear.path / "card.json").read_text())
    other["extra"]["backends"]["processor"] = "another PC"  # timings from another processor do not count
    (clear.path / "card.json").write_text(json.dumps(other))
    assert create_backend(load_bundle(clear.path, verify=False), "auto").name == "onnx"


def _item(outcome: Outcome, score: float) -> Item:
    v = Verdict(frame_id="f", source="", outcome=outcome, label="x", confidence=0.9, defect_score=score, scores={},
                model_name="m", model_version="v", timings_ms={})
    return Item(source="s", verdict=v)


def test_one_caught_defect_passed_refuses_even_at_full_agreement_otherwise() -> None:
    bundle = type("B", (), {"card": type("C", (), {"pass_classes": ("good",)})()})()
    ref = [_item(Outcome.FAIL, 0.9)] + [_item(Outcome.PASS, 0.1)] * 299
    got = [_item(Outcome.PASS, 0.4)] + [_item(Outcome.PASS, 0.1)] * 299
    gate = _gate(ref, got, ["scratch"] + ["good"] * 299, bundle, "minmax")  # type: ignore[arg-type]
    assert gate.agreement > 0.995 and gate.defects_passed == 1 and not gate.passed


def test_export_int8_needs_the_dataset(on_the_threshold: Path) -> None:
    run = CliRunner().invoke(_app(), ["export", str(on_the_threshold), "--int8"])
    assert run.exit_code == 2 and "--int8 needs --data" in run.output


def _app():
    from defectscope.cli import app

    return app


def test_percentile_ranges_take_frames_of_different_sizes(tmp_path: Path) -> None:
    """Native frames differ in size by a few pixels (KolektorSDD: 1263 and 1265 wide); the percentile
    calibrator stacks every batch's tensors, which crashed on them instead of calibrating."""
    import onnxruntime as ort
    import torch

    from training.quantize import _quantize

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1)).eval()
    src = tmp_path / "fcn.onnx"
    torch.onnx.export(net, torch.zeros(1, 1, 32, 48), str(src), input_names=["input"], output_names=["map"],
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 32, 48 + 2 * (i % 2))).astype(np.float32) for i in range(6)]
    out = tmp_path / "int8.onnx"
    _quantize(src, out, inputs, "percentile", tmp_path)
    got = ort.InferenceSession(str(out)).run(None, {"input": inputs[1][None]})[0]
    assert got.shape == (1, 1, 32, 50)
