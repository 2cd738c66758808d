"""The OpenVINO backend: the same answers as ONNX Runtime (parity checked at load), for a classifier
and for a native-resolution map network on a whole frame. Skipped where the package is missing
(``pip install 'defectscope[openvino]'``); CI installs it with the dev extras, so there it must run."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from inspection.predictor import Predictor
from inspection.runtime import OnnxBackend, create_backend
from tests.support import crack_frame, encode, make_map_bundle

if importlib.util.find_spec("openvino") is None:
    if os.environ.get("CI"):
        pytest.fail("openvino is missing: CI installs it with the dev extras", pytrace=False)
    pytest.skip("the openvino package is not installed (pip install 'defectscope[openvino]')",
                allow_module_level=True)


def test_the_classifier_answers_as_onnx_runtime(tiny_bundle) -> None:
    ov = create_backend(tiny_bundle, "openvino", threads=1)
    assert ov.name == "openvino" and ov.diff < 1e-4
    x = np.random.default_rng(3).standard_normal((3, 3, *tiny_bundle.card.preprocess.input_size)).astype(np.float32)
    np.testing.assert_allclose(ov(x).probs, OnnxBackend(tiny_bundle, threads=1)(x).probs, atol=1e-4)


def test_a_map_network_finds_the_same_region_on_a_whole_frame(tmp_path) -> None:
    frame = crack_frame()
    bundle = make_map_bundle(tmp_path / "map", frame)
    got = {name: Predictor(bundle, backend=name, threads=1).inspect(encode(frame)).verdict
           for name in ("onnx", "openvino")}
    assert got["openvino"].outcome == got["onnx"].outcome
    assert got["openvino"].defect_score == pytest.approx(got["onnx"].defect_score, abs=1e-4)
    assert [r.box for r in got["openvino"].regions] == [r.box for r in got["onnx"].regions]
