"""Inference backends behind one small interface: NCHW float32 in, (N, C) probabilities out.

ONNX Runtime is the default on CPU (faster, no autograd machinery); PyTorch serves when a
GPU is wanted or no ONNX file exists.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from inspection.bundle import Bundle
from inspection.errors import BundleError


class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


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
        out = self._session.get_outputs()[0].shape[-1]
        if isinstance(out, int) and out != bundle.card.num_classes:
            raise BundleError(f"model.onnx has {out} outputs but the card lists {bundle.card.num_classes} classes")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input": batch})[0]


class TorchBackend:
    name = "torch"

    def __init__(self, bundle: Bundle, device: str | None = None, threads: int | None = None) -> None:
        import torch

        from inspection.bundle import check_weights
        from inspection.models import WithSoftmax

        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if threads:
            torch.set_num_threads(threads)
        check_weights(bundle)
        self._model = WithSoftmax(bundle.build_torch_model()).to(self.device).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(batch).to(self.device, non_blocking=True)
            return self._model(x).float().cpu().numpy()


def create_backend(bundle: Bundle, name: str = "auto", threads: int | None = None) -> Backend:
    """``auto`` picks ONNX Runtime when the bundle has an ONNX file, else PyTorch."""
    if name == "auto":
        name = "onnx" if bundle.onnx_path is not None else "torch"
    if name == "onnx":
        return OnnxBackend(bundle, threads=threads)
    if name == "torch":
        return TorchBackend(bundle, threads=threads)
    raise ValueError(f"unknown backend {name!r}: use 'onnx', 'torch' or 'auto'")
