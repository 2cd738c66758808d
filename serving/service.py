"""The service core the routes call: admission, and the predictor's stages scheduled for many clients.

Decoding runs in a thread pool off the event loop (``Predictor.load``), inference in the
micro-batcher (``Predictor.infer`` on batches of many requests), the verdict in ``Predictor.decide``;
then the verdict log and metrics. HTTP-agnostic except for ApiError, the edge's error type.
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
from dataclasses import replace
from typing import Any

from inspection.errors import DefectscopeError
from inspection.predictor import Item, Predictor
from inspection.thread_layout import decode_threads
from inspection.timing import ms_since
from serving.background import background_pool
from serving.batcher import BatchResult, MicroBatcher, Overloaded
from serving.config import Settings
from serving.errors import ApiError, bad_image
from serving.explain_pool import ExplainPool
from serving.metrics import ServiceMetrics
from serving.model_switch import ModelSwitch
from serving.mqtt_out import MqttOutbox
from serving.reload import ReloadError, ReloadOutcome, open_predictor, resolve, warm_up
from serving.samples_index import SamplesIndex
from serving.schemas import ExplanationOut, ImageOut, InspectResponse, ModelRef, ThresholdsOut
from serving.stations import StationRegistry
from serving.verdict_log import VerdictLog, VerdictLogFull, VerdictRecord

log = logging.getLogger("defectscope.serving")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_predictor(settings: Settings) -> Predictor:
    """The one place a model is resolved and loaded: ``settings.model`` (a bundle folder), else the
    champion of ``settings.line`` in ``settings.registry``."""
    if settings.model is None and settings.registry is None:
        raise DefectscopeError("no model given: pass --model BUNDLE or --registry REGISTRY "
                               "(DEFECTSCOPE_MODEL, DEFECTSCOPE_REGISTRY)")
    try:
        path, _ = resolve(settings)
    except ReloadError as exc:
        raise DefectscopeError(str(exc)) from None
    return open_predictor(settings, path)


class InspectionService:
    def __init__(self, settings: Settings, metrics: ServiceMetrics, predictor: Predictor | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.predictor = predictor
        self.ready = False
        self.batcher: MicroBatcher | None = None
        self.verdict_log: VerdictLog | None = None
        self.samples_index: SamplesIndex | None = None  # in the verdict log's database
        self._pool: ThreadPoolExecutor | None = None
        self.decode_threads: int | None = None
        self._in_flight = 0
        self._decoding = 0  # images admitted and still being decoded: what the batcher may wait for
        self.explain_pool = ExplainPool(settings.max_explain_pending, settings.explain_side, settings.retry_after_s)
        self.background = background_pool(1, "defectscope-background")  # zips: no station waits for them
        self.stations = StationRegistry(settings.max_stations)
        self.listeners: list[Any] = []  # called (station, verdict, card, ts, process) after each verdict: the monitor
        self.models = ModelSwitch(self)
        self.mqtt: MqttOutbox | None = None  # set by the app when DEFECTSCOPE_MQTT_URL is

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        db = s.database(s.verdict_db)
        if db is not None:
            self.verdict_log = VerdictLog(db, images_dir=s.keep_images_dir,
                                          keep_images_for=s.keep_images_for, max_backlog=s.verdict_log_max_backlog,
                                          max_pending_image_bytes=s.keep_images_max_pending_mb * 1024 * 1024,
                                          spill_dir=s.verdict_spill_dir)
            self.verdict_log.start()
            self.samples_index = SamplesIndex(db)
            self.metrics.watch_verdict_log(self.verdict_log)
            known = await loop.run_in_executor(None, self.verdict_log.stations, s.max_stations)
            self.stations = StationRegistry(s.max_stations, known)
        self.decode_threads = s.decode_threads or decode_threads()
        self._pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="defectscope-decode")
        if self.predictor is None and (s.model is not None or s.registry is not None):
            self.predictor = await loop.run_in_executor(self._pool, load_predictor, s)
        self.models.start_watch()
        if self.predictor is None:
            log.warning("no model loaded: /v1/inspect answers 503 until the service is started with --model")
            return
        await loop.run_in_executor(self._pool, warm_up, self.predictor, s.max_batch_size)
        self.start_batcher()

    def start_batcher(self) -> None:
        assert self.predictor is not None
        s = self.settings
        self.batcher = MicroBatcher(self.predictor.infer, max_batch_size=s.max_batch_size,
                                    max_wait_ms=s.batch_wait_ms, max_queue=s.max_queue, metrics=self.metrics,
                                    coming=lambda: self._decoding)
        self.batcher.start()
        self.ready = True
        card = self.predictor.card
        log.info("serving %s@%s (%s backend)", card.name, card.version, self.predictor.backend.name)

    async def reload(self, version: str | None = None, *, force: bool = False) -> ReloadOutcome:
        return await self.models.reload(version, force=force)

    async def stop(self) -> None:
        """Finish within the stop deadline: answered verdicts reach the log or its spill file."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_s / 2  # uvicorn had the first half
        self.ready = False
        await self.models.stop_watch()
        self.explain_pool.close()
        self.background.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        if self.batcher is not None:
            await loop.run_in_executor(None, self.batcher.stop, max(0.5, (deadline - time.monotonic()) / 2))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.verdict_log is not None:
            await loop.run_in_executor(None, self.verdict_log.close, max(0.5, deadline - time.monotonic()))
        if self.mqtt is not None:
            await loop.run_in_executor(None, self.mqtt.close, max(0.5, deadline - time.monotonic()))

    def health(self) -> tuple[bool, str | None]:
        """(ready, why not) for /readyz: a model serves, and the verdict log keeps up."""
        if not self.ready or self.predictor is None:
            return False, "no model loaded yet"
        if self.verdict_log is not None:
            state, why = self.verdict_log.status()
            if state != "ok":
                return False, f"verdict log {state}: {why}"
        return True, None

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

    def require_ready(self) -> Predictor:
        if not self.ready or self.predictor is None or self.batcher is None:
            raise ApiError(503, "no_model", "no model is loaded yet: wait for /readyz, or start the service "
                           "with --model BUNDLE", headers={"Retry-After": str(self.settings.retry_after_s)})
        return self.predictor

    # -- one image ------------------------------------------------------------------------------
    def _load(self, predictor: Predictor, data: bytes, source: str,
              explain: bool) -> tuple[Item, BatchResult | None]:
        """Decode and prepare; when the batcher is idle, infer right here too (no hand-offs for a lone station)."""
        item = predictor.load(data, source=source, keep_image=explain)
        if explain and item.image is not None:  # waiting images hold kilobytes, not a decoded 64 MP frame
            item = replace(item, image=self.explain_pool.view(item.image))
        inline = None
        if item.inputs is not None and self.batcher is not None and self._decoding <= 1:
            inline = self.batcher.infer_now(item.inputs, predictor.infer)
        return item, inline

    async def _explain(self, predictor: Predictor, item: Item) -> ExplanationOut:
        from inspection.imageops import encode_image

        e = await self.explain_pool.explain(predictor, item)
        png = await self.explain_pool.run(encode_image, e.overlay, ".png")
        h, w = e.overlay.shape[:2]
        return ExplanationOut(target=e.target, peak=e.peak, width=w, height=h,
                              overlay_png=base64.b64encode(png).decode("ascii"))

    async def inspect(self, data: bytes, *, station: str | None, part: str | None,
                      metadata: dict[str, Any] | None, started: float, explain: bool = False,
                      process: dict[str, Any] | None = None) -> InspectResponse:
        predictor = self.require_ready()
        assert self.batcher is not None and self._pool is not None
        if not data:
            raise ApiError(422, "empty_image", "the request carried no image bytes: send the image as the body")
        loop = asyncio.get_running_loop()
        self._decoding += 1
        try:  # the hash (for the log) on a second thread while the image decodes: it costs as much as a resize
            sha = loop.run_in_executor(self._pool, _sha256, data)
            if explain:  # decoded on the heatmap thread: a heatmap request never holds a station's decode thread
                item, res = await self.explain_pool.run(self._load, predictor, data, station or "", explain)
            else:
                item, res = await loop.run_in_executor(self._pool, self._load, predictor, data, station or "", explain)
            item = replace(item, sha256=await sha)
        finally:
            self._decoding -= 1
        if item.error is not None:
            raise bad_image(item.error)
        if res is None:
            try:
                res = await self.batcher.submit(item.inputs, predictor.infer)  # the model that prepared it infers it
            except Overloaded:
                self.metrics.shed.inc()
                raise ApiError(503, "overloaded", "the inference queue is full; retry later",
                               headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        item = predictor.decide(replace(item, probs=res.probs, map=res.map, batch_size=res.batch_size).timed(
            queue=res.queue_ms, inference=res.inference_ms))
        explanation = None
        if explain:  # the caller holds an explain_pool slot
            t0 = time.perf_counter()
            explanation = await self._explain(predictor, item)
            item = item.timed(explain=ms_since(t0))
        out = self._record(predictor, item.timed(total=ms_since(started)), data, station, part, metadata, process)
        return out.model_copy(update={"explanation": explanation}) if explanation else out

    def _record(self, predictor: Predictor, item: Item, data: bytes, station: str | None, part: str | None,
                metadata: dict[str, Any] | None, process: dict[str, Any] | None = None) -> InspectResponse:
        card, v, timings = predictor.card, item.verdict, dict(item.timings)
        assert v is not None and item.sha256 is not None and item.size is not None
        request_id = uuid.uuid4().hex
        now = time.time()  # one time for the log, MQTT and the monitor: a chart rebuilt from the log lines up
        regions = [r.to_dict() for r in v.regions]  # once: the log, MQTT and the answer share it
        m = self.metrics
        if self.verdict_log is not None:  # first: a verdict the log cannot take is not answered
            try:
                self.verdict_log.append(VerdictRecord(
                    ts=now, request_id=request_id, station=station, part_id=part, image_sha256=item.sha256,
                    verdict=v.outcome.value, label=v.label, confidence=v.confidence, defect_score=v.defect_score,
                    scores=dict(v.scores), model_name=card.name, model_version=card.version,
                    latency_ms=timings["total"], batch_size=v.batch_size, metadata=metadata, process=process,
                    regions=regions or None, width=item.size[1], height=item.size[0],
                ), image=data, image_format=item.format or "")
            except VerdictLogFull as exc:
                raise ApiError(503, "verdict_log_unavailable", str(exc),
                               headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        if self.mqtt is not None:
            self.mqtt.verdict({"request_id": request_id, "ts": now, "station": station, "part_id": part,
                               "verdict": v.outcome.value, "label": v.label, "confidence": v.confidence,
                               "defect_score": v.defect_score, "model": {"name": card.name, "version": card.version},
                               "regions": regions, "process": process, "metadata": metadata})
        m.observe_stages(timings)
        m.verdicts.labels(verdict=v.outcome.value, label=v.label, station=m.station_label(station)).inc()
        for listen in self.listeners:
            listen(station, v, card, now, process)
        return InspectResponse(
            request_id=request_id, verdict=v.outcome.value, label=v.label, confidence=v.confidence, reason=v.reason,
            defect_score=v.defect_score, scores=dict(v.scores),
            thresholds=ThresholdsOut(fail=card.thresholds.fail, review=card.thresholds.review),
            model=ModelRef(name=card.name, version=card.version),
            image=ImageOut(sha256=item.sha256, format=item.format or "", width=item.size[1], height=item.size[0],
                           bytes=len(data)),
            station_id=station, part_id=part, metadata=metadata, process=process, batch_size=v.batch_size,
            timings_ms=timings,
            regions=regions,
        )
