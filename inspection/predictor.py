"""The one inspection pipeline: bytes (or a camera frame) -> decode -> quality gate -> preprocess ->
infer -> decide, each stage timed once.

``Item`` is the typed record of one image on that path; every stage returns a copy with its part
filled in, so callers schedule the stages as they need without re-coding any of them:

* the service decodes in a thread pool, lets its micro-batcher call ``Predictor.infer`` on
  batches of many requests, then ``decide``s each;
* the QA batch runner ``load``s in worker threads and ``run``s batches on its own thread;
* evaluation, calibration and the golden-set comparison ``load`` dataset files and ``run`` them,
  so their figures are what the line would do, quality gate included.

``Preparer`` is the model-free half (decode, gate, preprocess): training uses it to see exactly
the pixels the line will see. Every decodable frame is classified, also one the gate refuses:
its verdict is ``invalid`` whatever the scores say, and the scores are kept for diagnosis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspection.bundle import Bundle, load_bundle
from inspection.card import ModelCard
from inspection.decision import DecisionRule, defect_mask
from inspection.decode import DEFAULT_MAX_PIXELS, decode_image
from inspection.errors import ImageDecodeError, PreprocessError
from inspection.imageinfo import read_image_info
from inspection.preprocess import PreprocessConfig, Preprocessor
from inspection.quality import QualityGate, QualityLimits, QualityResult
from inspection.regions import MapGeometry, find_regions
from inspection.runtime import Backend, Output, as_output, create_backend
from inspection.tiling import tiled_infer
from inspection.timing import StageClock
from inspection.types import Outcome, Verdict, new_frame_id

ItemError = ImageDecodeError | PreprocessError


@dataclass(frozen=True, eq=False)
class Item:
    """One image through the pipeline. A stage that cannot go on sets ``error`` (the exception, so
    callers map it to their own answer) and the record travels on, so every input keeps its row."""

    source: str = ""
    frame_id: str = field(default_factory=new_frame_id)
    sha256: str | None = None
    format: str | None = None
    size: tuple[int, int] | None = None  # (height, width) as captured
    image: np.ndarray | None = None  # the decoded frame, kept only when asked (thumbnails, heatmaps)
    quality: QualityResult | None = None  # None: the model has no gate
    prepared: np.ndarray | None = None  # HxWxC uint8 at model size: what the gate judged
    inputs: np.ndarray | None = None  # CxHxW float32: what the model infers
    geometry: MapGeometry | None = None  # where the model input lay in the frame (maps back to it)
    probs: np.ndarray | None = None
    map: np.ndarray | None = None  # (D, h, w) defect map probabilities, for a map network
    batch_size: int = 0  # images in the inference batch this one was part of
    verdict: Verdict | None = None
    error: ItemError | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def timed(self, **ms: float) -> Item:
        return replace(self, timings={**self.timings, **ms})


class Preparer:
    """Decode, quality gate and preprocessing: everything before the model, shared with training."""

    def __init__(self, pre: PreprocessConfig, quality: QualityLimits | None = None, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS, reduced_decode: bool = True) -> None:
        self.config = pre
        self.preprocessor = Preprocessor(pre)
        self.gate = QualityGate(quality, pre) if quality is not None else None
        self.max_pixels = max_pixels
        self.reduced_decode = reduced_decode

    def decode(self, data: bytes) -> tuple[np.ndarray, tuple[int, int], str]:
        """(image, captured (h, w), format), at reduced resolution when the model input allows it.
        Raises ImageDecodeError (or ImageTooLargeError) with a message for the user."""
        info = read_image_info(data)
        min_size = self.config.min_decode_size((info.height, info.width)) if self.reduced_decode else None
        image, info = decode_image(data, color=self.config.decode_color, min_size=min_size,
                                   max_pixels=self.max_pixels, info=info)
        return image, (info.height, info.width), info.format

    def load(self, data: bytes, *, source: str = "", frame_id: str | None = None, keep_image: bool = False,
             sha256: bool = False) -> Item:
        """Bytes -> an Item ready for inference (or carrying the reason it is not)."""
        item = Item(source, frame_id or new_frame_id(), hashlib.sha256(data).hexdigest() if sha256 else None)
        clock = StageClock()
        try:
            with clock.stage("decode"):
                image, captured, fmt = self.decode(data)
        except ImageDecodeError as exc:
            return replace(item, error=exc, timings=clock.ms)
        return self.prepare(replace(item, format=fmt, size=captured), image, clock, keep_image)

    def from_image(self, image: np.ndarray, *, captured: tuple[int, int] | None = None, source: str = "",
                   frame_id: str | None = None, keep_image: bool = False) -> Item:
        """A frame already in memory (a camera's) -> an Item ready for inference."""
        size = captured or (int(image.shape[0]), int(image.shape[1]))
        return self.prepare(Item(source, frame_id or new_frame_id(), size=size), image, StageClock(), keep_image)

    def prepare(self, item: Item, image: np.ndarray, clock: StageClock, keep_image: bool) -> Item:
        pre = self.preprocessor
        try:
            with clock.stage("preprocess"):
                box = pre.region(image, item.size)
                prepared = pre.prepare(image, item.size, box)
                inputs = pre.normalize(prepared)
        except PreprocessError as exc:
            return replace(item, error=exc, timings=clock.ms)
        quality = None
        if self.gate is not None:
            with clock.stage("quality"):
                quality = self.gate.check_prepared(prepared)
        return replace(item, image=image if keep_image else None, quality=quality, prepared=prepared,
                       inputs=inputs, geometry=_geometry(box, image.shape[:2], item.size, prepared.shape[:2]),
                       timings=clock.ms)


def _geometry(box: tuple[int, int, int, int], decoded: tuple[int, int], captured: tuple[int, int] | None,
              model: tuple[int, int]) -> MapGeometry:
    """The model input's box in camera pixels (the decode may have been reduced)."""
    cap = captured or decoded
    fy, fx = cap[0] / decoded[0], cap[1] / decoded[1]
    x, y, w, h = box
    return MapGeometry((round(x * fx), round(y * fy), max(1, round(w * fx)), max(1, round(h * fy))), model)


class Predictor:
    """A bundle's whole pipeline. ``threads``: inference threads; ``batch_size``: what ``run`` infers at once."""

    def __init__(self, bundle: Bundle, *, backend: str | Backend = "auto", batch_size: int = 8,
                 threads: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 reduced_decode: bool = True) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.bundle = bundle
        self.card: ModelCard = bundle.card
        self.backend: Backend = create_backend(bundle, backend, threads) if isinstance(backend, str) else backend
        self.batch_size = batch_size
        self.preparer = Preparer(self.card.preprocess, self.card.quality, max_pixels=max_pixels,
                                 reduced_decode=reduced_decode)
        self.rule = DecisionRule(self.card)
        self._defect = defect_mask(self.card.classes, self.card.pass_classes)  # for tiled inference

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> Predictor:
        return cls(load_bundle(path), **kwargs)

    @property
    def max_pixels(self) -> int:
        return self.preparer.max_pixels

    # -- stages ---------------------------------------------------------------------------------
    def load(self, data: bytes, **kwargs: Any) -> Item:
        return self.preparer.load(data, **kwargs)

    def infer(self, batch: np.ndarray) -> Output:
        """NCHW float32 -> (N, C) class probabilities, and the defect maps for a map network (in
        overlapping tiles when the card sets ``tile``: inspection.tiling). A plain array from a custom
        backend is taken as the probabilities alone."""
        tile = self.card.preprocess.tile
        if tile is not None and self.card.has_map:
            return tiled_infer(self.backend, batch, tile, self._defect)
        return as_output(self.backend(batch))

    def classify(self, items: Sequence[Item]) -> list[Item]:
        """Batched inference over the items that have an input (one batch per input size: frames of a
        native-resolution model may differ); the others pass unchanged."""
        out = list(items)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, it in enumerate(items):
            if it.inputs is not None:
                groups.setdefault(it.inputs.shape, []).append(i)
        for todo in groups.values():
            clock = StageClock()
            with clock.stage("inference"):
                res = self.infer(np.ascontiguousarray(np.stack([items[i].inputs for i in todo])))
            for k, i in enumerate(todo):
                out[i] = replace(items[i], probs=res.probs[k], map=None if res.maps is None else res.maps[k],
                                 batch_size=len(todo)).timed(**clock.ms)
        return out

    def decide(self, item: Item) -> Item:
        """The verdict: from the probabilities, unless the gate refused the frame (then ``invalid``)."""
        if item.error is not None or item.probs is None:
            return item
        clock = StageClock()
        with clock.stage("decision"):
            probs, card = item.probs, self.card
            d = self.rule(probs)
            scores = {c: float(p) for c, p in zip(card.classes, probs, strict=True)}
            q = item.quality
            refused = q is not None and not q.ok
            outcome, label, confidence, reason = (Outcome.INVALID, q.code or "invalid", 0.0, q.reason) if refused \
                else (d.outcome, d.label, d.confidence, None)  # never a pass when the gate refused the frame
            regions = () if item.map is None or item.geometry is None else find_regions(
                item.map, card.map_classes, item.geometry, card.thresholds.region, item.size)
        timings = {**item.timings, **clock.ms}
        verdict = Verdict(frame_id=item.frame_id, source=item.source, outcome=outcome, label=label,
                          confidence=confidence, defect_score=d.defect_score, scores=scores, model_name=card.name,
                          model_version=card.version, timings_ms=timings, batch_size=item.batch_size, reason=reason,
                          regions=regions)
        return replace(item, verdict=verdict, timings=timings)

    # -- the whole path, for callers that do not schedule the stages themselves -----------------
    def run(self, items: Iterable[Item]) -> list[Item]:
        """Classify ``batch_size`` at a time and decide: every item comes back, in order."""
        items = list(items)
        out: list[Item] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self.decide(it) for it in self.classify(items[start : start + self.batch_size]))
        return out

    def inspect(self, data: bytes, **kwargs: Any) -> Item:
        """One image end to end."""
        return self.run([self.load(data, **kwargs)])[0]
