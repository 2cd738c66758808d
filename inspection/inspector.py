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
from inspection.preprocess import Preprocessor
from inspection.runtime import Backend, create_backend
from inspection.types import Frame, Verdict, new_frame_id


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


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
        pre = self.card.preprocess
        info = read_image_info(data)
        min_size = pre.min_decode_size((info.height, info.width)) if self.reduced_decode else None
        image, info = decode_image(data, color=pre.decode_color, min_size=min_size, max_pixels=self.max_pixels,
                                   info=info)
        return Frame(
            image=image, source=source, frame_id=frame_id or new_frame_id(),
            original_size=(info.height, info.width),
            meta={**(meta or {}), "format": info.format, "decode_ms": _ms(t0)},
        )

    def preprocess(self, frame: Frame) -> np.ndarray:
        """Frame -> CHW float32 model input."""
        return self.preprocessor(frame.image, frame.size)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 -> (N, C) class probabilities."""
        return self.backend(batch)

    def verdict(self, frame: Frame, probs: np.ndarray, timings: Mapping[str, float], batch_size: int = 1) -> Verdict:
        t0 = time.perf_counter()
        d = self.rule(probs)
        scores = {c: float(p) for c, p in zip(self.card.classes, probs, strict=True)}
        return Verdict(
            frame_id=frame.frame_id, source=frame.source, outcome=d.outcome, label=d.label,
            confidence=d.confidence, defect_score=d.defect_score, scores=scores,
            model_name=self.card.name, model_version=self.card.version,
            timings_ms={**timings, "decision": _ms(t0)}, batch_size=batch_size,
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
        inputs, pre_ms = [], []
        for f in frames:
            t0 = time.perf_counter()
            inputs.append(self.preprocess(f))
            pre_ms.append(_ms(t0))
        t0 = time.perf_counter()
        probs = self.infer(np.stack(inputs))
        infer_ms = _ms(t0)
        return [
            self.verdict(
                f, probs[i],
                {"decode": float(f.meta.get("decode_ms", 0.0)), "preprocess": pre_ms[i], "inference": infer_ms},
                batch_size=len(frames),
            )
            for i, f in enumerate(frames)
        ]
