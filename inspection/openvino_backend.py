"""Intel's OpenVINO runtime on the bundle's ONNX graph (optional: ``pip install 'defectscope[openvino]'``).

Many plants run it on their Intel PCs. It is held to the same parity as ONNX Runtime's export
check: at load, its answer to a fixed input must match ONNX Runtime's within ``PARITY_TOLERANCE``,
or it refuses to serve. Full float precision is asked for explicitly: on processors with AMX the
CPU plugin would otherwise compute in bfloat16 and drift from the validated model.
"""

from __future__ import annotations

import threading

import numpy as np

from inspection.bundle import Bundle
from inspection.cores import usable_cores
from inspection.errors import BundleError
from inspection.runtime import OnnxBackend, Output

PARITY_TOLERANCE = 1e-4


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, bundle: Bundle, threads: int | None = None, *, check: bool = True) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise BundleError("the openvino backend needs the openvino package: "
                              "pip install 'defectscope[openvino]'") from None
        if bundle.onnx_path is None:
            raise BundleError(f"{bundle.path} has no model.onnx for OpenVINO to read")
        core = ov.Core()
        self.threads = threads or usable_cores()
        try:
            model = core.read_model(str(bundle.onnx_path))
            self._compiled = core.compile_model(model, "CPU", {
                "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                "INFERENCE_NUM_THREADS": str(self.threads)})
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise BundleError(f"OpenVINO cannot compile {bundle.onnx_path}: {exc}") from None
        self._outputs = [o for o in self._compiled.outputs if o.get_any_name() in ("probs", "map")]
        self._local = threading.local()  # an infer request per thread: they are not shareable
        if check:
            self.diff = parity(self, OnnxBackend(bundle, threads=1), bundle)
            if not self.diff < PARITY_TOLERANCE:
                raise BundleError(f"OpenVINO's answers differ from ONNX Runtime's by {self.diff:.2e} "
                                  f"(tolerance {PARITY_TOLERANCE:.0e}): not serving it; use --backend onnx")

    def __call__(self, batch: np.ndarray) -> Output:
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self._compiled.create_infer_request()
        res = req.infer({0: np.ascontiguousarray(batch)})
        return Output(*(np.array(res[o]) for o in self._outputs))


def parity(backend: OpenVinoBackend | OnnxBackend, reference: OnnxBackend, bundle: Bundle) -> float:
    """Largest difference of the two backends' outputs on fixed inputs at the card's input size."""
    h, w = bundle.card.preprocess.input_size
    x = np.random.default_rng(0).standard_normal((2, bundle.card.preprocess.channels, h, w)).astype(np.float32)
    got, want = backend(x), reference(x)
    return max(float(np.abs(np.asarray(g) - np.asarray(e)).max())
               for g, e in zip(got, want, strict=True) if g is not None and e is not None)
