"""Inference backends behind one small interface: NCHW float32 in, ``Output`` out: (N, C) class
probabilities and, for a network with a defect map (``inspection.segdec``), (N, D, h, w) map
probabilities, one channel per defect class, a cell per ``MAP_STRIDE`` input pixels.

ONNX Runtime is the default on CPU (faster, no autograd machinery); PyTorch serves when a
GPU is wanted or no ONNX file exists. A bundle may also carry an INT8 graph (``onnx-int8``, written
only when it agrees with the float one) and be served by OpenVINO (``openvino``, optional package);
``defectscope export`` measures them on the inspection PC and ``auto`` then takes the fastest.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from inspection.bundle import Bundle
from inspection.cores import usable_cores
from inspection.errors import BundleError


class Output(NamedTuple):
    probs: np.ndarray
    maps: np.ndarray | None = None


def as_output(result: Output | np.ndarray) -> Output:
    """A backend's answer as an Output: a plain array (a custom backend) is the probabilities alone."""
    return result if isinstance(result, Output) else Output(np.asarray(result))


class Backend(Protocol):
    name: str  # and, where known, ``threads``: the intra-op threads it infers with

    def __call__(self, batch: np.ndarray) -> Output: ...


class OnnxBackend:
    """ONNX Runtime on the float graph, or (``int8``) on the quantized one ``export --int8`` gated."""

    def __init__(self, bundle: Bundle, threads: int | None = None, *, int8: bool = False,
                 path: Path | None = None) -> None:
        """``path``: another graph of this bundle's model (a quantization candidate being gated)."""
        import onnxruntime as ort

        path = path or (bundle.int8_path if int8 else bundle.onnx_path)
        if path is None:
            raise BundleError(f"{bundle.path} has no INT8 model: run 'defectscope export --int8 {bundle.path} "
                              "--data DATASET'" if int8 else
                              f"{bundle.path} has no model.onnx; use the torch backend or re-export")
        self.name = "onnx-int8" if int8 else "onnx"
        opts = ort.SessionOptions()
        self.threads = opts.intra_op_num_threads = threads or usable_cores()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"{path} cannot be loaded: {exc}") from None
        outputs = self._session.get_outputs()
        out = outputs[0].shape[-1]
        if isinstance(out, int) and out != bundle.card.num_classes:
            raise BundleError(f"{path.name} has {out} outputs but the card lists {bundle.card.num_classes} classes")
        self._names = [o.name for o in outputs if o.name in ("probs", "map")]

    def __call__(self, batch: np.ndarray) -> Output:
        return Output(*self._session.run(self._names, {"input": batch}))


class TorchBackend:
    name = "torch"

    def __init__(self, bundle: Bundle, device: str | None = None, threads: int | None = None) -> None:
        import torch

        from inspection.bundle import check_weights
        from inspection.models import served_module

        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if threads:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        check_weights(bundle)
        self._model = served_module(bundle.build_torch_model()).to(self.device).eval()

    def __call__(self, batch: np.ndarray) -> Output:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(batch).to(self.device, non_blocking=True)
            out = self._model(x)
            if isinstance(out, tuple):
                return Output(*(o.float().cpu().numpy() for o in out))
            return Output(out.float().cpu().numpy())


BACKENDS = ("auto", "onnx", "onnx-int8", "openvino", "torch")


def resolve_backend(bundle: Bundle, name: str = "auto") -> str:
    """The backend ``name`` stands for with this bundle: ``auto`` resolved as ``create_backend`` does."""
    if name == "auto":
        return recorded_fastest(bundle) or ("onnx" if bundle.onnx_path is not None else "torch")
    return name


def create_backend(bundle: Bundle, name: str = "auto", threads: int | None = None) -> Backend:
    """``auto``: the fastest backend the card records as measured on this machine's processor
    (``defectscope export`` measures them), else ONNX Runtime when the bundle has an ONNX file, else
    PyTorch. A recorded choice whose files are gone falls back the same way."""
    name = resolve_backend(bundle, name)
    if name == "onnx":
        return OnnxBackend(bundle, threads=threads)
    if name == "onnx-int8":
        return OnnxBackend(bundle, threads=threads, int8=True)
    if name == "openvino":
        from inspection.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(bundle, threads=threads)
    if name == "torch":
        return TorchBackend(bundle, threads=threads)
    raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


def processor() -> str:
    """This machine's processor model and core count: what backend timings are valid for."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{model or 'unknown'} x{usable_cores()}"


def recorded_fastest(bundle: Bundle) -> str | None:
    """The fastest backend measured on this processor (card ``extra.backends``) that is usable here."""
    rec = bundle.card.extra.get("backends")
    if not isinstance(rec, dict) or rec.get("processor") != processor():
        return None
    usable = {"onnx": bundle.onnx_path is not None, "onnx-int8": bundle.int8_path is not None,
              "openvino": bundle.onnx_path is not None and _has("openvino"), "torch": True}
    timed = [(float(ms), name) for name, ms in (rec.get("ms") or {}).items()
             if usable.get(name) and name in (rec.get("passed") or ())]
    return min(timed)[1] if timed else None


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
