"""Export a classifier to ONNX and prove the file reproduces PyTorch before keeping it."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from inspection.errors import ExportParityError

PARITY_TOLERANCE = 1e-4
OPSET = 17


class WithSoftmax(nn.Module):
    """Both backends return probabilities, so parity is checked on what decisions use."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def export_onnx(model: nn.Module, sample: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> tuple[bytes, float]:
    """ONNX bytes for ``model`` (dynamic batch) and the max probability difference on ``sample``.

    Raises ExportParityError instead of returning a graph that disagrees with PyTorch.
    """
    import onnxruntime as ort

    wrapped = WithSoftmax(model).eval().cpu()
    x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript and is slower; it remains exact for these CNNs, and parity is checked below.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (x[:1],), buf, dynamo=False, opset_version=OPSET,
            input_names=["input"], output_names=["probs"],
            dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"}},
        )
    data = buf.getvalue()
    with torch.inference_mode():
        expected = wrapped(x).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff < tolerance:
        raise ExportParityError(
            f"ONNX export differs from PyTorch by {diff:.2e} (tolerance {tolerance:.0e}); "
            "model.onnx was not written. Serve with the PyTorch backend or report the architecture."
        )
    return data, diff
