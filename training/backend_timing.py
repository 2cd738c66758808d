"""Which inference backend is fastest for a bundle on this machine: each one that can serve it
(ONNX Runtime float and INT8, OpenVINO, PyTorch) timed at batch 1 on the card's input size, the
result recorded in the card (``extra.backends``) for ``--backend auto`` on a machine with the same
processor. A backend that fails its parity check (OpenVINO's, at load) is listed as failed, not timed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from inspection.bundle import Bundle
from inspection.errors import BundleError
from inspection.runtime import create_backend, processor
from training.export import update_bundle

WARMUP, RUNS = 5, 30


def measure_backends(bundle: Bundle, threads: int | None = None, sample: np.ndarray | None = None) -> dict[str, Any]:
    """``sample``: a model input as the line produces it (CxHxW); a native-resolution model serves
    whole frames, not the training crop the card's input size names."""
    if sample is None:
        h, w = bundle.card.preprocess.input_size
        sample = np.random.default_rng(0).standard_normal((bundle.card.preprocess.channels, h, w))
    x = np.ascontiguousarray(sample[None], dtype=np.float32)
    h, w = x.shape[2:]
    names = ["onnx"] * (bundle.onnx_path is not None) + ["onnx-int8"] * (bundle.int8_path is not None)
    names += ["openvino"] * (bundle.onnx_path is not None) + ["torch"]
    ms: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            backend = create_backend(bundle, name, threads)
        except BundleError as exc:  # not installed, or answers that differ: not a candidate
            failed[name] = str(exc)
            continue
        for _ in range(WARMUP):
            backend(x)
        times = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            backend(x)
            times.append(time.perf_counter() - t0)
        ms[name] = round(float(np.median(times)) * 1000, 3)
    return {"processor": processor(), "threads": threads, "batch": 1, "input": [int(h), int(w)], "ms": ms,
            "passed": sorted(ms), "failed": failed, "fastest": min(ms, key=ms.get) if ms else None}


def line_input(bundle: Bundle, data: str) -> np.ndarray | None:
    """A validation image of ``data`` as the bundle's preprocessing hands it to the model."""
    from inspection.predictor import Predictor
    from training.quantize import validation_images

    images, _ = validation_images(bundle, data, "val", 1)
    item = Predictor(bundle, backend="onnx" if bundle.onnx_path else "torch", threads=1).load(images[0][0].read_bytes())
    return item.inputs


def record_backends(bundle: Bundle, threads: int | None = None,
                    sample: np.ndarray | None = None) -> tuple[Bundle, dict[str, Any]]:
    """Measure, and write the result into the bundle's card."""
    result = measure_backends(bundle, threads, sample)
    return update_bundle(bundle, extra={"backends": result}), result
