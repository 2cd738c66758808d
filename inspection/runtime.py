"""Inference backends behind one small interface: NCHW float32 in, ``Output`` out: (N, C) class
probabilities and, for a network with a defect map (``inspection.segdec``), (N, D, h, w) map
probabilities, one channel per defect class, a cell per ``MAP_STRIDE`` input pixels.

ONNX Runtime is the default on CPU (faster, no autograd machinery); PyTorch serves when a
GPU is wanted or no ONNX file exists.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Protocol

import numpy as np

from inspection.bundle import Bundle
from inspection.errors import BundleError


class Output(NamedTuple):
    probs: np.ndarray
    maps: np.ndarray | None = None


def as_output(result: Output | np.ndarray) -> Output:
    """A backend's answer as an Output: a plain array (a custom backend) is the probabilities alone."""
    return result if isinstance(result, Output) else Output(np.asarray(result))


class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> Output: ...


def _default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class OnnxBackend:
    name = "onnx"

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        import onnxruntime as ort

        if bundle.onnx_path is None:
            raise BundleError(f"{bundle.path} has no model.onnx; use the torch backend or re-export")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(bundle.onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"{bundle.onnx_path} cannot be loaded: {exc}") from None
        outputs = self._session.get_outputs()
        out = outputs[0].shape[-1]
        if isinstance(out, int) and out != bundle.card.num_classes:
            raise BundleError(f"model.onnx has {out} outputs but the card lists {bundle.card.num_classes} classes")
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
        check_weights(bundle)
        self._model = served_module(bundle.build_torch_model()).to(self.device).eval()

    def __call__(self, batch: np.ndarray) -> Output:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(batch).to(self.device, non_blocking=True)
            out = self._model(x)
            if isinstance(out, tuple):
                return Output(*(o.float().cpu().numpy() for o in out))
            return Output(out.float().cpu().numpy())


def create_backend(bundle: Bundle, name: str = "auto", threads: int | None = None) -> Backend:
    """``auto`` picks ONNX Runtime when the bundle has an ONNX file, else PyTorch."""
    if name == "auto":
        name = "onnx" if bundle.onnx_path is not None else "torch"
    if name == "onnx":
        return OnnxBackend(bundle, threads=threads)
    if name == "torch":
        return TorchBackend(bundle, threads=threads)
    raise ValueError(f"unknown backend {name!r}: use 'onnx', 'torch' or 'auto'")
