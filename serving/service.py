"""The service core the routes call: admission, decode off the event loop, micro-batched inference,
verdict, verdict log and metrics. HTTP-agnostic except for ApiError, the edge's error type.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspection.errors import DefectscopeError, ImageDecodeError, PreprocessError
from inspection.inspector import Inspector
from inspection.registry import ModelRegistry
from inspection.types import Frame
from serving.background import background_pool
from serving.batcher import MicroBatcher, Overloaded
from serving.config import Settings
from serving.errors import ApiError, bad_image
from serving.explain_pool import ExplainPool
from serving.metrics import ServiceMetrics
from serving.reload import ReloadError, ReloadOutcome, open_inspector, prepare, record_served, resolve, warm_up
from serving.schemas import ExplanationOut, ImageOut, InspectResponse, ModelRef, ThresholdsOut
from serving.stations import StationRegistry
from serving.verdict_log import VerdictLog, VerdictLogFull, VerdictRecord

log = logging.getLogger("defectscope.serving")


def load_inspector(settings: Settings) -> Inspector:
    """The one place a model is resolved and loaded: ``settings.model`` (a bundle folder), else the
    champion of ``settings.line`` in ``settings.registry``."""
    if settings.model is None and settings.registry is None:
        raise DefectscopeError("no model given: pass --model BUNDLE or --registry REGISTRY "
                               "(DEFECTSCOPE_MODEL, DEFECTSCOPE_REGISTRY)")
    try:
        path, _ = resolve(settings)
    except ReloadError as exc:
        raise DefectscopeError(str(exc)) from None
    return open_inspector(settings, path)


@dataclass(frozen=True)
class Prepared:
    """One decoded upload while it waits for inference: the model input and what the verdict needs.

    ``frame`` keeps the full-resolution pixels only as a heatmap view (shrunk), so images that
    wait in the queue hold kilobytes, not the 192 MB of a decoded 64-megapixel frame.
    """

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
        self.explain_pool = ExplainPool(settings.max_explain_pending, settings.explain_side, settings.retry_after_s)
        self.background = background_pool(1, "defectscope-background")  # zips: no station waits for them
        self.stations = StationRegistry(settings.max_stations)
        self.listeners: list[Any] = []  # called (station, verdict, card, ts) after each verdict: the line monitor
        self._reload_lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self.reloads = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        if s.verdict_db is not None:
            self.verdict_log = VerdictLog(s.verdict_db, images_dir=s.keep_images_dir,
                                          keep_images_for=s.keep_images_for, max_backlog=s.verdict_log_max_backlog,
                                          max_pending_image_bytes=s.keep_images_max_pending_mb * 1024 * 1024,
                                          spill_dir=s.verdict_spill_dir)
            self.verdict_log.start()
            self.metrics.watch_verdict_log(self.verdict_log)
            known = await asyncio.get_running_loop().run_in_executor(None, self.verdict_log.stations, s.max_stations)
            self.stations = StationRegistry(s.max_stations, known)
        self._pool = ThreadPoolExecutor(s.decode_threads, thread_name_prefix="defectscope-decode")
        if self.inspector is None and (s.model is not None or s.registry is not None):
            self.inspector = await asyncio.get_running_loop().run_in_executor(self._pool, load_inspector, s)
        if s.registry is not None and s.registry_watch_s is not None:
            self._watch_task = asyncio.create_task(self._watch(s.registry_watch_s))
        if self.inspector is None:
            log.warning("no model loaded: /v1/inspect answers 503 until the service is started with --model")
            return
        await asyncio.get_running_loop().run_in_executor(self._pool, warm_up, self.inspector, s.max_batch_size)
        self._start_batcher()

    def _start_batcher(self) -> None:
        assert self.inspector is not None
        s = self.settings
        self.batcher = MicroBatcher(self.inspector.infer, max_batch_size=s.max_batch_size,
                                    max_wait_ms=s.batch_wait_ms, max_queue=s.max_queue, metrics=self.metrics)
        self.batcher.start()
        self.ready = True
        card = self.inspector.card
        log.info("serving %s@%s (%s backend)", card.name, card.version, self.inspector.backend.name)

    # -- hot reload -----------------------------------------------------------------------------
    async def reload(self, version: str | None = None, *, force: bool = False) -> ReloadOutcome:
        """Load, vet and swap in a model while the current one keeps serving (see serving/reload.py).

        Requests already decoded finish on the model that preprocessed them (the batcher keeps
        models apart), so a swap fails nothing and delays nothing beyond one batch.
        """
        async with self._reload_lock:
            old = self.inspector
            t0 = time.perf_counter()
            cand = await asyncio.get_running_loop().run_in_executor(
                None, prepare, self.settings, old.card if old else None, version, force)
            new = cand.inspector
            changed = old is None or old.card.version != new.card.version or force
            if changed:
                self.inspector = new  # one assignment: the next request prepares with the new model
                if self.batcher is None:
                    self._start_batcher()
                self.reloads += 1
                await asyncio.get_running_loop().run_in_executor(None, record_served, self.settings,
                                                                 new.card.version, force)
                log.info("reloaded: %s -> %s@%s from %s", old.card.version if old else "(none)", new.card.name,
                         new.card.version, cand.source)
            return ReloadOutcome(
                previous=ModelRef(name=old.card.name, version=old.card.version) if old else None,
                model=ModelRef(name=(self.inspector or new).card.name, version=(self.inspector or new).card.version),
                changed=changed, source=cand.source, load_ms=round(cand.load_ms, 1),
                verify_ms=round(cand.verify_ms, 1), total_ms=round(_ms(t0), 1), notes=list(cand.notes))

    async def _watch(self, every_s: float) -> None:
        """Poll the registry; a new champion for our line is loaded like POST /v1/model/reload."""
        assert self.settings.registry is not None
        reg = ModelRegistry(self.settings.registry)
        refused: str | None = None
        while True:
            await asyncio.sleep(every_s)
            champ = current = None
            try:
                champ = await asyncio.get_running_loop().run_in_executor(None, reg.champion_version,
                                                                         self.settings.line)
                current = self.inspector.card.version if self.inspector else None
                if champ is None or champ in (current, refused):
                    continue
                await self.reload()
            except ReloadError as exc:
                refused = champ  # do not retry a refused champion every poll; a new one is tried
                log.error("registry watch: champion %s refused, keeping %s: %s", champ, current, exc)
            except DefectscopeError as exc:
                log.error("registry watch: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive any surprise; the service keeps serving
                log.exception("registry watch failed; retrying")

    async def stop(self) -> None:
        """Finish within the stop deadline: answered verdicts reach the log or its spill file."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_s / 2  # uvicorn had the first half
        self.ready = False
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        self.explain_pool.close()
        self.background.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        if self.batcher is not None:
            await loop.run_in_executor(None, self.batcher.stop, max(0.5, (deadline - time.monotonic()) / 2))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.verdict_log is not None:
            await loop.run_in_executor(None, self.verdict_log.close, max(0.5, deadline - time.monotonic()))

    def health(self) -> tuple[bool, str | None]:
        """(ready, why not) for /readyz: a model serves, and the verdict log keeps up."""
        if not self.ready or self.inspector is None:
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

    def require_ready(self) -> Inspector:
        if not self.ready or self.inspector is None or self.batcher is None:
            raise ApiError(503, "no_model", "no model is loaded yet: wait for /readyz, or start the service "
                           "with --model BUNDLE", headers={"Retry-After": str(self.settings.retry_after_s)})
        return self.inspector

    # -- one image ------------------------------------------------------------------------------
    def _prepare(self, inspector: Inspector, data: bytes, source: str, explain: bool) -> Prepared:
        t0 = time.perf_counter()
        frame = inspector.decode(data, source=source)
        decode_ms = _ms(t0)
        t1 = time.perf_counter()
        chw = inspector.preprocess(frame)
        pre_ms = _ms(t1)
        # keep kilobytes, not the decoded frame, while this waits for the batcher (see Prepared)
        view = self.explain_pool.view(frame.image) if explain else np.zeros((1, 1), np.uint8)
        slim = Frame(view, frame.source, frame.frame_id, frame.timestamp, frame.size,
                     {k: v for k, v in frame.meta.items() if k != "prepared"})
        return Prepared(slim, chw, hashlib.sha256(data).hexdigest(), decode_ms, pre_ms)

    async def _explain(self, inspector: Inspector, p: Prepared) -> ExplanationOut:
        from inspection.explain import encode_image

        e = await self.explain_pool.explain(inspector, p.frame.image, p.frame.size, p.chw)
        png = await self.explain_pool.run(encode_image, e.overlay, ".png")
        h, w = e.overlay.shape[:2]
        return ExplanationOut(target=e.target, peak=e.peak, width=w, height=h,
                              overlay_png=base64.b64encode(png).decode("ascii"))

    async def inspect(self, data: bytes, *, station: str | None, part: str | None,
                      metadata: dict[str, Any] | None, started: float, explain: bool = False) -> InspectResponse:
        inspector = self.require_ready()
        assert self.batcher is not None and self._pool is not None
        if not data:
            raise ApiError(422, "empty_image", "the request carried no image bytes: send the image as the body")
        try:
            if explain:  # decoded on the heatmap thread: a heatmap request never holds a station's decode thread
                p = await self.explain_pool.run(self._prepare, inspector, data, station or "", explain)
            else:
                p = await asyncio.get_running_loop().run_in_executor(self._pool, self._prepare, inspector, data,
                                                                     station or "", explain)
        except (ImageDecodeError, PreprocessError) as exc:
            raise bad_image(exc) from None
        try:
            res = await self.batcher.submit(p.chw, inspector.infer)  # the model that preprocessed it infers it
        except Overloaded:
            self.metrics.shed.inc()
            raise ApiError(503, "overloaded", "the inference queue is full; retry later",
                           headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        timings = {"decode": p.decode_ms, "preprocess": p.preprocess_ms, "queue": res.queue_ms,
                   "inference": res.inference_ms}
        v = inspector.verdict(p.frame, res.probs, timings, batch_size=res.batch_size)
        explanation = None
        if explain:  # the caller holds an explain_pool slot
            t0 = time.perf_counter()
            explanation = await self._explain(inspector, p)
            timings = {**timings, "explain": _ms(t0)}
        timings = {**v.timings_ms, **timings, "total": _ms(started)}
        out = self._record(inspector, v, p, data, timings, station, part, metadata)
        return out.model_copy(update={"explanation": explanation}) if explanation else out

    def _record(self, inspector: Inspector, v: Any, p: Prepared, data: bytes, timings: dict[str, float],
                station: str | None, part: str | None, metadata: dict[str, Any] | None) -> InspectResponse:
        card = inspector.card
        request_id = uuid.uuid4().hex
        m = self.metrics
        if self.verdict_log is not None:  # first: a verdict the log cannot take is not answered
            try:
                self.verdict_log.append(VerdictRecord(
                    ts=time.time(), request_id=request_id, station=station, part_id=part, image_sha256=p.sha256,
                    verdict=v.outcome.value, label=v.label, confidence=v.confidence, defect_score=v.defect_score,
                    scores=dict(v.scores), model_name=card.name, model_version=card.version,
                    latency_ms=timings["total"], batch_size=v.batch_size, metadata=metadata,
                ), image=data, image_format=p.frame.meta["format"])
            except VerdictLogFull as exc:
                raise ApiError(503, "verdict_log_unavailable", str(exc),
                               headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        m.observe_stages(timings)
        m.verdicts.labels(verdict=v.outcome.value, label=v.label, station=m.station_label(station)).inc()
        for listen in self.listeners:
            listen(station, v, card, time.time())
        return InspectResponse(
            request_id=request_id, verdict=v.outcome.value, label=v.label, confidence=v.confidence, reason=v.reason,
            defect_score=v.defect_score, scores=dict(v.scores),
            thresholds=ThresholdsOut(fail=card.thresholds.fail, review=card.thresholds.review),
            model=ModelRef(name=card.name, version=card.version),
            image=ImageOut(sha256=p.sha256, format=p.frame.meta["format"], width=p.frame.size[1],
                           height=p.frame.size[0], bytes=len(data)),
            station_id=station, part_id=part, metadata=metadata, batch_size=v.batch_size, timings_ms=timings,
        )
