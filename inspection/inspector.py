"""Inspector: frames -> verdicts, batched, each stage timed (decode, preprocess, inference, decision).

The stages are public so callers that schedule work themselves (the service's micro-batcher,
the QA batch tool's worker pool) reuse them instead of re-implementing the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspection.bundle import Bundle, load_bundle
from inspection.card import ModelCard
from inspection.decision import DecisionRule
from inspection.decode import DEFAULT_MAX_PIXELS, decode_image
from inspection.imageinfo import read_image_info
from inspection.preprocess import PreprocessConfig, Preprocessor
from inspection.quality import QualityGate, QualityResult
from inspection.runtime import Backend, create_backend
from inspection.types import Frame, Outcome, Verdict, new_frame_id


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def decode_for(pre: PreprocessConfig, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               reduced: bool = True) -> tuple[np.ndarray, tuple[int, int], str]:
    """(image, captured (h, w), format): bytes decoded as the inspector decodes them, at reduced
    resolution when the model input allows it. Training uses it to learn the quality limits on
    exactly the pixels the gate will see. Raises ImageDecodeError (or ImageTooLargeError)."""
    info = read_image_info(data)
    min_size = pre.min_decode_size((info.height, info.width)) if reduced else None
    image, info = decode_image(data, color=pre.decode_color, min_size=min_size, max_pixels=max_pixels, info=info)
    return image, (info.height, info.width), info.format


class Inspector:
    def __init__(
        self,
        bundle: Bundle,
        *,
        backend: str | Backend = "auto",
        batch_size: int = 8,
        threads: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        reduced_decode: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.bundle = bundle
        self.card: ModelCard = bundle.card
        self.backend: Backend = create_backend(bundle, backend, threads) if isinstance(backend, str) else backend
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.reduced_decode = reduced_decode
        self.preprocessor = Preprocessor(self.card.preprocess)
        self.rule = DecisionRule(self.card)
        self.gate = QualityGate(self.card.quality, self.card.preprocess) if self.card.quality is not None else None

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> Inspector:
        return cls(load_bundle(path), **kwargs)

    # -- stages -----------------------------------------------------------------------------
    def decode(self, data: bytes, source: str = "", frame_id: str | None = None,
               meta: Mapping[str, Any] | None = None) -> Frame:
        """Bytes -> Frame, at reduced resolution when the model input allows it.

        Raises ImageDecodeError (or ImageTooLargeError) with a message for the user.
        """
        t0 = time.perf_counter()
        image, captured, fmt = decode_for(self.card.preprocess, data, max_pixels=self.max_pixels,
                                          reduced=self.reduced_decode)
        decode_ms = _ms(t0)
        extra: dict[str, Any] = {}
        if self.gate is not None:  # here, in the decode thread, so the verdict step stays cheap
            t1 = time.perf_counter()
            # the gate judges the prepared image; keep it so preprocess does not crop and resize again
            prepared = self.preprocessor.prepare(image, captured)
            extra = {"quality": self.gate.check_prepared(prepared), "quality_ms": _ms(t1),
                     "prepared": prepared, "prepared_for": self.card.preprocess}
        return Frame(
            image=image, source=source, frame_id=frame_id or new_frame_id(), original_size=captured,
            meta={**(meta or {}), "format": fmt, "decode_ms": decode_ms, **extra},
        )

    def quality(self, frame: Frame) -> QualityResult | None:
        """The gate's result for ``frame`` (computed by ``decode``, else now); None without a gate."""
        if self.gate is None:
            return None
        q = frame.meta.get("quality")
        return q if isinstance(q, QualityResult) else self.gate.check(frame.image, frame.size)

    def preprocess(self, frame: Frame) -> np.ndarray:
        """Frame -> CHW float32 model input (reusing what ``decode`` prepared for the gate, when it
        was prepared for this same preprocessing: a reload may have changed the model since)."""
        if frame.meta.get("prepared_for") == self.card.preprocess:
            return self.preprocessor.normalize(frame.meta["prepared"])
        return self.preprocessor(frame.image, frame.size)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 -> (N, C) class probabilities."""
        return self.backend(batch)

    def verdict(self, frame: Frame, probs: np.ndarray | None, timings: Mapping[str, float],
                batch_size: int = 1) -> Verdict:
        """``probs`` None: the classifier was skipped (the gate refused the frame)."""
        t0 = time.perf_counter()
        q = self.quality(frame)
        if (q is not None and not q.ok) or probs is None:
            return self._invalid(frame, q, probs, {**timings, "decision": _ms(t0)}, batch_size)
        d = self.rule(probs)
        scores = {c: float(p) for c, p in zip(self.card.classes, probs, strict=True)}
        return Verdict(
            frame_id=frame.frame_id, source=frame.source, outcome=d.outcome, label=d.label,
            confidence=d.confidence, defect_score=d.defect_score, scores=scores,
            model_name=self.card.name, model_version=self.card.version,
            timings_ms={**timings, "decision": _ms(t0)}, batch_size=batch_size,
        )

    def _invalid(self, frame: Frame, q: QualityResult | None, probs: np.ndarray | None,
                 timings: Mapping[str, float], batch_size: int) -> Verdict:
        """Never a pass: the frame is refused whatever the classifier said (its scores are kept
        for diagnosis when it ran)."""
        if q is None or q.ok:
            raise ValueError("a verdict without class probabilities needs a frame the quality gate refused")
        scores = {} if probs is None else {c: float(p) for c, p in zip(self.card.classes, probs, strict=True)}
        defect = 0.0 if probs is None else float(self.rule.defect_scores(probs[None])[0])
        if "quality_ms" in frame.meta:
            timings = {**timings, "quality": float(frame.meta["quality_ms"])}
        return Verdict(
            frame_id=frame.frame_id, source=frame.source, outcome=Outcome.INVALID, label=q.code or "invalid",
            confidence=0.0, defect_score=defect, scores=scores, model_name=self.card.name,
            model_version=self.card.version, timings_ms=dict(timings), batch_size=batch_size, reason=q.reason,
        )

    # -- the whole pipeline -----------------------------------------------------------------
    def inspect(self, frames: Sequence[Frame]) -> list[Verdict]:
        """Verdicts in the order of ``frames``, inferred ``batch_size`` at a time."""
        out: list[Verdict] = []
        for start in range(0, len(frames), self.batch_size):
            out.extend(self._inspect_batch(frames[start : start + self.batch_size]))
        return out

    def inspect_one(self, frame: Frame) -> Verdict:
        return self._inspect_batch([frame])[0]

    def inspect_stream(self, frames: Iterator[Frame]) -> Iterator[Verdict]:
        """Verdicts for an endless source (a camera), one small batch at a time."""
        chunk: list[Frame] = []
        for frame in frames:
            chunk.append(frame)
            if len(chunk) == self.batch_size:
                yield from self._inspect_batch(chunk)
                chunk = []
        if chunk:
            yield from self._inspect_batch(chunk)

    def _inspect_batch(self, frames: Sequence[Frame]) -> list[Verdict]:
        """The classifier runs only on the frames the quality gate lets through."""
        gated = []
        for f in frames:
            q = self.quality(f)
            if q is not None and "quality" not in f.meta:
                f = Frame(f.image, f.source, f.frame_id, f.timestamp, f.original_size, {**f.meta, "quality": q})
            gated.append((f, q is None or q.ok))
        inputs, pre_ms = [], {}
        for i, (f, ok) in enumerate(gated):
            if ok:
                t0 = time.perf_counter()
                inputs.append(self.preprocess(f))
                pre_ms[i] = _ms(t0)
        probs, infer_ms = None, 0.0
        if inputs:
            t0 = time.perf_counter()
            probs = iter(self.infer(np.stack(inputs)))
            infer_ms = _ms(t0)
        return [
            self.verdict(
                f, next(probs) if ok and probs is not None else None,
                {"decode": float(f.meta.get("decode_ms", 0.0)), "preprocess": pre_ms.get(i, 0.0),
                 "inference": infer_ms},
                batch_size=len(inputs),
            )
            for i, (f, ok) in enumerate(gated)
        ]
