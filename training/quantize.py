"""INT8 with a gate: static post-training quantization (ONNX Runtime's tools) that is written into
a bundle only when it agrees with the float model.

Calibrated on the bundle's own validation images, preprocessed by the bundle's own pipeline (the
Predictor), so the activation ranges are the line's. The gate runs both graphs through the whole
Predictor (quality gate, tiling, decision rule) on those images: the INT8 graph ships only if its
verdicts (and classes) agree on at least ``MIN_AGREEMENT`` of them and it passes no validation defect that the
float model catches. Otherwise nothing is written and the refusal lists what disagreed. MinMax
ranges are tried first, then percentile ranges (robust to a few outlier activations). The
convolutions are quantized (per channel), the small heads that make the score are not.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from datasets.layout import Dataset
from inspection.bundle import ONNX_INT8, Bundle, load_bundle
from inspection.errors import DefectscopeError
from inspection.predictor import Item, Predictor
from inspection.runtime import OnnxBackend
from inspection.types import Outcome
from training.export import update_bundle

MIN_AGREEMENT = 0.995
MAX_IMAGES = 500
HEAD_OPS = ("Gemm", "MatMul", "Softmax", "Sigmoid")


class QuantizationRefused(DefectscopeError):
    """The INT8 graph disagrees with the float model: it was not written."""


@dataclass(frozen=True)
class GateResult:
    method: str
    images: int
    agreement: float
    defects: int  # validation defects the float model catches
    defects_passed: int  # of those, passed by INT8: must be 0
    disagreements: tuple[str, ...]  # "path: float fail 0.71 -> int8 pass 0.42"

    @property
    def passed(self) -> bool:
        return self.agreement >= MIN_AGREEMENT and self.defects_passed == 0

    def summary(self) -> str:
        return (f"{self.method}: verdicts and classes agree on {self.agreement:.2%} of {self.images} validation images "
                f"(needs {MIN_AGREEMENT:.1%}), {self.defects_passed} of {self.defects} caught defects passed")


def quantize_bundle(path: str | Path, data: str | Path, *, split: str = "val", max_images: int = MAX_IMAGES,
                    threads: int | None = None) -> tuple[Bundle, GateResult]:
    """Write ``model.int8.onnx`` into the bundle at ``path`` if it passes the gate; else raise
    QuantizationRefused saying what disagreed (the bundle is left as it was)."""
    bundle = load_bundle(path)
    if bundle.onnx_path is None:
        raise DefectscopeError(f"{bundle.path} has no model.onnx to quantize: re-export it with 'defectscope train'")
    samples, note = validation_images(bundle, data, split, max_images)
    float_pred = Predictor(bundle, backend=OnnxBackend(bundle, threads), threads=threads)
    items = [float_pred.load(p.read_bytes(), source=str(p)) for p, _ in samples]
    labels = [label for _, label in samples]
    inputs = [it.inputs for it in items if it.ok and it.inputs is not None]
    if not inputs:
        raise DefectscopeError(f"none of the {len(items)} {split} images of {data} could be preprocessed")
    reference = float_pred.run(items)
    tried = []
    with tempfile.TemporaryDirectory(prefix="defectscope-int8-") as tmp:
        for method in ("minmax", "percentile"):
            candidate = Path(tmp) / f"{method}.onnx"
            _quantize(bundle.onnx_path, candidate, inputs, method, Path(tmp))
            int8_pred = Predictor(bundle, backend=OnnxBackend(bundle, threads, path=candidate), threads=threads)
            gate = _gate(reference, int8_pred.run(items), labels, bundle, method)
            tried.append(gate)
            if gate.passed:
                return _write(bundle, candidate, gate, f"{note}; {gate.summary()}"), gate
    lines = [g.summary() for g in tried] + [f"  {d}" for d in tried[-1].disagreements[:10]]
    raise QuantizationRefused("the INT8 model disagrees with the float model, so it was not written:\n"
                              + "\n".join(lines) + "\nserve the float model (--backend onnx), or retrain: "
                              "scores that sit on the threshold are what quantization flips")


def validation_images(bundle: Bundle, data: str | Path, split: str,
                      max_images: int) -> tuple[list[tuple[Path, str]], str]:
    """Up to ``max_images`` of the split the bundle was validated on: (path, label), and a note."""
    ds = _as_trained(Dataset.load(data), bundle)
    chosen = ds.split(split)
    if not chosen:
        raise DefectscopeError(f"{data} has no '{split}' images to calibrate and gate on")
    rng = np.random.default_rng(0)  # a fixed, spread subset when there are more than max_images
    if len(chosen) > max_images:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), max_images, replace=False))]
    same = ds.fingerprint() == bundle.card.dataset_fingerprint
    note = f"{len(chosen)} {split} images of {ds.root}" + ("" if same else " (not the dataset it was trained on)")
    return [(ds.abspath(s), s.label) for s in chosen], note


def _as_trained(ds: Dataset, bundle: Bundle) -> Dataset:
    """The dataset with the splits the bundle was trained with (a cross-validation fold's model
    validated on a share of the other folds: the card's data view says which)."""
    view = (bundle.card.extra.get("training") or {}).get("data_view") or {}
    if not view.get("folds") and view.get("fold") is None:
        return ds
    from training.config import TrainConfig
    from training.data_view import training_dataset

    config = TrainConfig(data=str(ds.root), out="", fold=view.get("fold"), folds=view.get("folds"))
    return training_dataset(config, ds)


class _Reader(CalibrationDataReader):
    """ONNX Runtime's calibration data: the preprocessed inputs, one image per batch."""

    def __init__(self, inputs: list[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"input": np.ascontiguousarray(x[None], dtype=np.float32)}


def _quantize(src: Path, out: Path, inputs: list[np.ndarray], method: str, tmp: Path) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    pre = tmp / "pre.onnx"
    if not pre.exists():  # shapes are dynamic (batch, and frame size for a map network): no symbolic pass
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    percentile = method == "percentile"
    if percentile:  # its histograms stack every batch's tensors: frames of one size (native frames may differ)
        shapes = Counter(x.shape for x in inputs)
        inputs = [x for x in inputs if x.shape == shapes.most_common(1)[0][0]]
    reader = _Reader(inputs)
    extra: dict[str, Any] = {"CalibPercentile": 99.999} if percentile else {}
    # the heads (fully connected layers, output activations) stay float: a tiny share of the time,
    # and where the score is made, so where quantization noise would flip verdicts near the threshold
    head = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in HEAD_OPS]
    with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its histogram settings
        quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, extra_options=extra,
                        calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
                        nodes_to_exclude=head)


def _gate(reference: list[Item], got: list[Item], labels: list[str], bundle: Bundle, method: str) -> GateResult:
    passes = set(bundle.card.pass_classes)
    same = defects = defects_passed = 0
    differ = []
    for a, b, label in zip(reference, got, labels, strict=True):
        va, vb = a.verdict, b.verdict
        if va is None or vb is None:  # undecodable: the same for both graphs
            same += 1
            continue
        if va.outcome == vb.outcome and va.label == vb.label:  # the class too: a scratch is no pit
            same += 1
        else:
            differ.append(f"{a.source}: float {va.outcome.value} {va.label} {va.defect_score:.3f} -> "
                          f"int8 {vb.outcome.value} {vb.label} {vb.defect_score:.3f}")
        if label not in passes and va.outcome != Outcome.PASS:
            defects += 1
            defects_passed += vb.outcome == Outcome.PASS
    return GateResult(method, len(reference), same / max(1, len(reference)), defects, defects_passed,
                      tuple(differ))


def _write(bundle: Bundle, candidate: Path, gate: GateResult, note: str) -> Bundle:
    record = {"calibration": gate.method, "calibrated_on": note, "images": gate.images,
              "agreement": round(gate.agreement, 5), "defects_caught_by_float": gate.defects,
              "defects_passed_by_int8": gate.defects_passed, "min_agreement": MIN_AGREEMENT,
              "disagreements": list(gate.disagreements[:20])}
    return update_bundle(bundle, extra={"int8": record}, add={ONNX_INT8: candidate})
