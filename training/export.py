"""Write model bundles: the weights, the card, and an ONNX export proven to reproduce PyTorch.

Bundles are written atomically (a crash leaves the previous one intact). The runtime side,
loading and checking them, is ``inspection.bundle``.
"""

from __future__ import annotations

import io
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from inspection.atomic import atomic_dir
from inspection.bundle import CARD, ONNX, WEIGHTS, Bundle, sha256_file
from inspection.card import ModelCard
from inspection.errors import ExportParityError
from inspection.models import served_module
from inspection.segdec import has_map

PARITY_TOLERANCE = 1e-4
OPSET = 17


def export_onnx(model: nn.Module, sample: np.ndarray | Sequence[np.ndarray],
                tolerance: float = PARITY_TOLERANCE) -> tuple[bytes, float]:
    """ONNX bytes for ``model`` (dynamic batch; for a map network also dynamic height and width, with
    the defect map as a second output) and the max difference from PyTorch on ``sample`` (one NCHW
    array, or several of different sizes: a native-resolution model serves frames of any size).

    Raises ExportParityError instead of returning a graph that disagrees with PyTorch.
    """
    import onnxruntime as ort

    wrapped = served_module(model).eval().cpu()
    samples = [sample] if isinstance(sample, np.ndarray) else list(sample)
    xs = [torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in samples]
    mapped = has_map(model)
    names = ["probs", "map"] if mapped else ["probs"]
    axes = {"input": {0: "batch"}, "probs": {0: "batch"}}
    if mapped:
        axes = {"input": {0: "batch", 2: "height", 3: "width"}, "probs": {0: "batch"},
                "map": {0: "batch", 2: "map_height", 3: "map_width"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript and is slower; it remains exact for these CNNs, and parity is checked below.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (xs[0][:1],), buf, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=names, dynamic_axes=axes)
    data = buf.getvalue()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    diff = 0.0
    for x in xs:
        with torch.inference_mode():
            expected = wrapped(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(names, {"input": x.numpy()})
        diff = max(diff, *(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True)))
    if not diff < tolerance:
        raise ExportParityError(
            f"ONNX export differs from PyTorch by {diff:.2e} (tolerance {tolerance:.0e}); "
            "model.onnx was not written. Serve with the PyTorch backend or report the architecture."
        )
    return data, diff


def save_bundle(
    path: str | Path,
    model: nn.Module,
    card: ModelCard,
    *,
    sample: np.ndarray | Sequence[np.ndarray] | None = None,
    export: bool = True,
) -> Bundle:
    """Write a bundle atomically; ``sample`` (NCHW float32, or a list of such) feeds the ONNX parity check.

    An empty ``card.version`` becomes the first 12 hex digits of the weights' sha256, so a
    version names exactly one set of weights.
    """
    from inspection import __version__

    path = Path(path)
    with atomic_dir(path) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        files = {WEIGHTS: sha256_file(tmp / WEIGHTS)}
        extra = dict(card.extra)
        if export:
            if sample is None:
                h, w = card.preprocess.input_size
                sample = np.random.default_rng(0).standard_normal((2, card.preprocess.channels, h, w))
            data, diff = export_onnx(model, sample)
            (tmp / ONNX).write_bytes(data)
            files[ONNX] = sha256_file(tmp / ONNX)
            extra["onnx_parity_max_abs_diff"] = diff
        card = card.with_(
            files=files, extra=extra, software_version=__version__,
            version=card.version or files[WEIGHTS][:12],
        )
        (tmp / CARD).write_text(card.to_json())
    return Bundle(path, card)


def update_bundle(bundle: Bundle, *, extra: dict[str, Any], add: dict[str, Path] | None = None) -> Bundle:
    """The bundle rewritten atomically with ``extra`` merged into its card and the files in ``add``
    (name -> source) copied in and hashed; the weights, and so the version, stay as they are."""
    add = add or {}
    with atomic_dir(bundle.path) as tmp:
        for f in bundle.path.iterdir():
            if f.is_file() and f.name != CARD and f.name not in add:
                shutil.copy2(f, tmp / f.name)
        files = dict(bundle.card.files)
        for name, src in add.items():
            shutil.copy2(src, tmp / name)
            files[name] = sha256_file(tmp / name)
        card = bundle.card.with_(files=files, extra={**bundle.card.extra, **extra})
        (tmp / CARD).write_text(card.to_json())
    return Bundle(bundle.path, card)
