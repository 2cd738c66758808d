import json
import shutil

import numpy as np
import pytest
import torch

from inspection.bundle import check_weights, load_bundle
from inspection.card import ModelCard, Thresholds
from inspection.errors import BundleError, ExportParityError
from inspection.runtime import OnnxBackend, TorchBackend, create_backend
from tests.support import make_tiny_bundle
from training import export as export_mod
from training.export import export_onnx


def test_round_trip_keeps_card_and_weights(tiny_bundle):
    loaded = load_bundle(tiny_bundle.path)
    assert loaded.card == tiny_bundle.card
    assert loaded.card.version == loaded.card.files["weights.safetensors"][:12]
    assert loaded.card.extra["onnx_parity_max_abs_diff"] < 1e-4
    assert {p.name for p in tiny_bundle.path.iterdir()} == {"weights.safetensors", "card.json", "model.onnx"}


def test_onnx_and_torch_backends_agree(tiny_bundle, rng):
    batch = rng.standard_normal((5, 3, 40, 56)).astype(np.float32)
    a, b = OnnxBackend(tiny_bundle)(batch), TorchBackend(tiny_bundle, device="cpu")(batch)
    assert a.maps is None and b.maps is None  # a classifier without a defect map
    a, b = a.probs, b.probs
    assert a.shape == (5, 3) and np.allclose(a.sum(1), 1, atol=1e-5)
    assert np.abs(a - b).max() < 1e-4
    single = OnnxBackend(tiny_bundle)(batch[2:3]).probs
    assert np.abs(single[0] - a[2]).max() < 1e-5  # batching does not change a frame's scores


@pytest.fixture
def copy_of(tiny_bundle, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, dst)
    return dst


def test_tampered_weights_are_refused(copy_of):
    w = copy_of / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the hash"):
        load_bundle(copy_of)


def test_card_that_disagrees_with_weights_is_refused(copy_of):
    card = json.loads((copy_of / "card.json").read_text())
    card["classes"].append("crack")
    (copy_of / "card.json").write_text(json.dumps(card))
    bundle = load_bundle(copy_of)  # reading needs no torch; using the weights checks them
    with pytest.raises(BundleError, match=r"weights do not match the card"):
        check_weights(bundle)
    with pytest.raises(BundleError, match=r"weights do not match the card"):
        create_backend(bundle, "torch")
    with pytest.raises(BundleError, match="outputs but the card lists 4 classes"):
        create_backend(bundle, "onnx")


def test_missing_or_broken_cards_are_refused(copy_of, tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "nothing")
    (copy_of / "card.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(copy_of)
    (copy_of / "card.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(BundleError, match=r"card\.json is invalid"):
        load_bundle(copy_of)


def test_pickle_disguised_as_safetensors_is_refused_without_running_it(copy_of):
    torch.save({"x": torch.zeros(1)}, copy_of / "weights.safetensors")
    with pytest.raises(BundleError):
        load_bundle(copy_of)
    with pytest.raises(BundleError):
        load_bundle(copy_of, verify=False).build_torch_model()


def test_failed_save_leaves_the_previous_bundle_intact(tiny_bundle, tmp_path, monkeypatch):
    target = tmp_path / "b"
    make_tiny_bundle(target)
    before = (target / "card.json").read_text()

    def broken(*a, **k):
        raise ExportParityError("simulated parity failure")

    monkeypatch.setattr(export_mod, "export_onnx", broken)
    model = tiny_bundle.build_torch_model()
    with pytest.raises(ExportParityError):
        export_mod.save_bundle(target, model, tiny_bundle.card.with_(version=""))
    assert (target / "card.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temp folder left behind


def test_export_refuses_a_graph_that_disagrees(tiny_bundle):
    model = tiny_bundle.build_torch_model()
    with pytest.raises(ExportParityError, match="was not written"):
        export_onnx(model, np.zeros((1, 3, 40, 56), np.float32), tolerance=-1.0)


def test_thresholds_and_classes_are_validated():
    with pytest.raises(BundleError):
        Thresholds(fail=0.4, review=0.6)
    with pytest.raises(BundleError):
        Thresholds(fail=1.5)
    with pytest.raises(BundleError, match="not among the classes"):
        ModelCard.from_dict({**json.loads(_card_json()), "pass_classes": ["ok"]})


def _card_json() -> str:
    from inspection.preprocess import PreprocessConfig

    return ModelCard(
        name="t", version="1", arch="resnet18", classes=("good", "bad"), pass_classes=("good",),
        preprocess=PreprocessConfig(input_size=(8, 8)),
    ).to_json()
