"""The service core the routes call: admission, decode off the event loop, micro-batched inference,
verdict, verdict log and metrics. HTTP-agnostic except for ApiError, the edge's error type.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspection.errors import DefectscopeError, ImageDecodeError, ImageTooLargeError, PreprocessError
from inspection.inspector import Inspector
from inspection.types import Frame
from serving.batcher import MicroBatcher, Overloaded
from serving.config import Settings
from serving.errors import ApiError
from serving.metrics import ServiceMetrics
from serving.schemas import ExplanationOut, ImageOut, InspectResponse, ModelRef, ThresholdsOut
from serving.verdict_log import VerdictLog, VerdictRecord

log = logging.getLogger("defectscope.serving")


def load_inspector(settings: Settings) -> Inspector:
    """The one place a model is resolved and loaded (a registry lookup will grow here)."""
    if settings.model is None:
        raise DefectscopeError("no model given: pass --model BUNDLE or set DEFECTSCOPE_MODEL")
    return Inspector.from_path(settings.model, backend=settings.backend, batch_size=settings.max_batch_size,
                               threads=settings.threads, max_pixels=settings.max_pixels)


@dataclass(frozen=True)
class Prepared:
    frame: Frame
    chw: np.ndarray
    sha256: str
    decode_ms: float
    preprocess_ms: float


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class InspectionService:
    def __init__(self, settings: Settings, metrics: ServiceMetrics, inspector: Inspector | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.inspector = inspector
        self.ready = False
        self.batcher: MicroBatcher | None = None
        self.verdict_log: VerdictLog | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0
        self._explainer: Any = None  # inspection.explain.Explainer, built on the first ?explain=true

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        if s.verdict_db is not None:
            self.verdict_log = VerdictLog(s.verdict_db, images_dir=s.keep_images_dir,
                                          keep_images_for=s.keep_images_for)
            self.verdict_log.start()
            self.metrics.log_backlog.set_function(lambda: self.verdict_log.backlog if self.verdict_log else 0)
        self._pool = ThreadPoolExecutor(s.decode_threads, thread_name_prefix="defectscope-decode")
        if self.inspector is None and s.model is not None:
            self.inspector = await asyncio.get_running_loop().run_in_executor(self._pool, load_inspector, s)
        if self.inspector is None:
            log.warning("no model loaded: /v1/inspect answers 503 until the service is started with --model")
            return
        await asyncio.get_running_loop().run_in_executor(self._pool, self._warm_up, self.inspector)
        self.batcher = MicroBatcher(self.inspector.infer, max_batch_size=s.max_batch_size,
                                    max_wait_ms=s.batch_wait_ms, max_queue=s.max_queue, metrics=self.metrics)
        self.batcher.start()
        self.ready = True
        card = self.inspector.card
        log.info("serving %s@%s (%s backend)", card.name, card.version, self.inspector.backend.name)

    def _warm_up(self, inspector: Inspector) -> None:
        """First calls allocate and plan; pay that before the first part, at every batch size seen."""
        h, w = inspector.card.preprocess.input_size
        for n in sorted({1, self.settings.max_batch_size}):
            inspector.infer(np.zeros((n, inspector.card.preprocess.channels, h, w), np.float32))

    async def stop(self) -> None:
        self.ready = False
        if self.batcher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.batcher.stop)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.verdict_log is not None:
            self.verdict_log.close()  # every queued verdict reaches the database

    # -- admission: the bound on images in the service at once ----------------------------------
    @contextmanager
    def admitted(self, n: int = 1):
        if self._in_flight + n > self.settings.max_queue:
            self.metrics.shed.inc()
            raise ApiError(503, "overloaded", f"the service is at capacity ({self.settings.max_queue} images in "
                           f"flight); retry after {self.settings.retry_after_s} s",
                           headers={"Retry-After": str(self.settings.retry_after_s)})
        self._in_flight += n
        self.metrics.in_flight.inc(n)
        try:
            yield
        finally:
            self._in_flight -= n
            self.metrics.in_flight.dec(n)

    def require_ready(self) -> Inspector:
        if not self.ready or self.inspector is None or self.batcher is None:
            raise ApiError(503, "no_model", "no model is loaded yet: wait for /readyz, or start the service "
                           "with --model BUNDLE", headers={"Retry-After": str(self.settings.retry_after_s)})
        return self.inspector

    # -- one image ------------------------------------------------------------------------------
    def _prepare(self, inspector: Inspector, data: bytes, source: str) -> Prepared:
        t0 = time.perf_counter()
        frame = inspector.decode(data, source=source)
        decode_ms = _ms(t0)
        t1 = time.perf_counter()
        chw = inspector.preprocess(frame)
        return Prepared(frame, chw, hashlib.sha256(data).hexdigest(), decode_ms, _ms(t1))

    def _explain(self, inspector: Inspector, p: Prepared) -> ExplanationOut:
        """Grad-CAM on the PyTorch model (loaded on first use, again after a model change)."""
        from inspection.explain import Explainer, encode_image

        ex = self._explainer
        if ex is None or ex.card.version != inspector.card.version:
            ex = self._explainer = Explainer(inspector.bundle)
        e = ex.explain_batch([p.frame.image], captured=[p.frame.size], inputs=p.chw[None])[0]
        h, w = e.overlay.shape[:2]
        return ExplanationOut(target=e.target, peak=e.peak, width=w, height=h,
                              overlay_png=base64.b64encode(encode_image(e.overlay, ".png")).decode("ascii"))

    async def inspect(self, data: bytes, *, station: str | None, part: str | None,
                      metadata: dict[str, Any] | None, started: float, explain: bool = False) -> InspectResponse:
        inspector = self.require_ready()
        assert self.batcher is not None and self._pool is not None
        if not data:
            raise ApiError(422, "empty_image", "the request carried no image bytes: send the image as the body")
        try:
            p = await asyncio.get_running_loop().run_in_executor(self._pool, self._prepare, inspector, data,
                                                                 station or "")
        except ImageTooLargeError as exc:
            raise ApiError(422, "image_too_large", str(exc)) from None
        except ImageDecodeError as exc:
            raise ApiError(422, "undecodable_image", str(exc)) from None
        except PreprocessError as exc:
            raise ApiError(422, "preprocess_failed", str(exc)) from None
        try:
            res = await self.batcher.submit(p.chw)
        except Overloaded:
            self.metrics.shed.inc()
            raise ApiError(503, "overloaded", "the inference queue is full; retry later",
                           headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        timings = {"decode": p.decode_ms, "preprocess": p.preprocess_ms, "queue": res.queue_ms,
                   "inference": res.inference_ms}
        v = inspector.verdict(p.frame, res.probs, timings, batch_size=res.batch_size)
        explanation = None
        if explain:
            t0 = time.perf_counter()
            explanation = await asyncio.get_running_loop().run_in_executor(self._pool, self._explain, inspector, p)
            timings = {**timings, "explain": _ms(t0)}
        timings = {**v.timings_ms, **timings, "total": _ms(started)}
        out = self._record(inspector, v, p, data, timings, station, part, metadata)
        return out.model_copy(update={"explanation": explanation}) if explanation else out

    def _record(self, inspector: Inspector, v: Any, p: Prepared, data: bytes, timings: dict[str, float],
                station: str | None, part: str | None, metadata: dict[str, Any] | None) -> InspectResponse:
        card = inspector.card
        request_id = uuid.uuid4().hex
        m = self.metrics
        m.observe_stages(timings)
        m.verdicts.labels(verdict=v.outcome.value, label=v.label, station=m.station_label(station)).inc()
        if self.verdict_log is not None:
            self.verdict_log.append(VerdictRecord(
                ts=time.time(), request_id=request_id, station=station, part_id=part, image_sha256=p.sha256,
                verdict=v.outcome.value, label=v.label, confidence=v.confidence, defect_score=v.defect_score,
                scores=dict(v.scores), model_name=card.name, model_version=card.version,
                latency_ms=timings["total"], batch_size=v.batch_size, metadata=metadata,
            ), image=data, image_format=p.frame.meta["format"])
        return InspectResponse(
            request_id=request_id, verdict=v.outcome.value, label=v.label, confidence=v.confidence,
            defect_score=v.defect_score, scores=dict(v.scores),
            thresholds=ThresholdsOut(fail=card.thresholds.fail, review=card.thresholds.review),
            model=ModelRef(name=card.name, version=card.version),
            image=ImageOut(sha256=p.sha256, format=p.frame.meta["format"], width=p.frame.size[1],
                           height=p.frame.size[0], bytes=len(data)),
            station_id=station, part_id=part, metadata=metadata, batch_size=v.batch_size, timings_ms=timings,
        )
