"""Micro-batching: one inference worker thread groups images that arrive together.

The first image in an empty queue waits at most ``max_wait_ms`` for company, but only while
company is on its way (``coming()``: images still being decoded); with nothing else in flight it
is inferred at once, so a lone station pays no batching delay. Then the worker stacks up to
``max_batch_size`` CHW arrays and calls ``infer`` once. When the worker is idle and nothing is
queued, ``infer_now`` runs a single image in the caller's thread instead (the decode thread that
just prepared it), sparing two thread hand-offs; one lock keeps every inference one at a time. Concurrent stations share
the cores through larger batches instead of fighting for them. The queue is bounded: ``submit``
raises Overloaded at once when it is full, so the caller can answer 503 instead of waiting.

Each item may name its own ``infer`` (the model that preprocessed it). A batch only holds items
of one model, so after a hot reload queued images of the old model finish on the old model and
the new one takes over at the next batch: nothing fails, nothing waits longer than one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inspection.runtime import Output, as_output
from serving.metrics import ServiceMetrics

log = logging.getLogger("defectscope.serving")


class Overloaded(Exception):
    """The inference queue is full."""


@dataclass(frozen=True)
class BatchResult:
    probs: np.ndarray  # (C,) for this image
    map: np.ndarray | None  # (D, h, w) defect map of a map network
    batch_size: int
    queue_ms: float  # from submit until the worker took the batch
    inference_ms: float  # the whole batch's inference call


@dataclass
class _Item:
    chw: np.ndarray
    infer: Callable[[np.ndarray], Output]
    future: asyncio.Future[BatchResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float


def _resolve(fut: asyncio.Future[BatchResult], result: BatchResult | None, error: BaseException | None) -> None:
    if fut.done():  # the request was cancelled (client went away)
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)  # type: ignore[arg-type]


class MicroBatcher:
    def __init__(self, infer: Callable[[np.ndarray], Output], *, max_batch_size: int = 8,
                 max_wait_ms: float = 2.0, max_queue: int = 32, metrics: ServiceMetrics | None = None,
                 coming: Callable[[], int] | None = None) -> None:
        self._infer = infer
        self._coming = coming or (lambda: 1)  # unknown: always worth waiting the window
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._metrics = metrics
        self._thread: threading.Thread | None = None
        self._carry: _Item | None = None  # an item of another model, first in the next batch
        self._busy = threading.Lock()  # one inference at a time, the worker's or an inline one
        if metrics is not None:
            metrics.queue_depth.set_function(self._queue.qsize)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="defectscope-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Answer everything already queued, then end the worker."""
        if self._thread is None:
            return
        self._queue.put(None)  # blocks only while full; the worker keeps draining
        self._thread.join(timeout)
        self._thread = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def submit(self, chw: np.ndarray, infer: Callable[[np.ndarray], Output] | None = None) -> BatchResult:
        """Probabilities for ``chw`` from ``infer`` (default: the batcher's own)."""
        if self._thread is None:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        item = _Item(chw, infer or self._infer, loop.create_future(), loop, time.perf_counter())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise Overloaded from None
        return await item.future

    def infer_now(self, chw: np.ndarray, infer: Callable[[np.ndarray], Output]) -> BatchResult | None:
        """Infer ``chw`` in this thread when the worker is idle and nothing waits; else None (submit it)."""
        if self._thread is None or not self._queue.empty() or self._carry is not None or \
                not self._busy.acquire(blocking=False):
            return None
        try:
            t0 = time.perf_counter()
            out = infer(chw[None])
            infer_ms = (time.perf_counter() - t0) * 1000.0
        finally:
            self._busy.release()
        if self._metrics is not None:
            self._metrics.batch_size.observe(1)
        return BatchResult(out.probs[0], None if out.maps is None else out.maps[0], 1, 0.0, infer_ms)

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        batch, deadline = [first], first.enqueued + self.max_wait
        while len(batch) < self.max_batch_size:
            if self._queue.empty() and self._coming() == 0:
                break  # nothing else in flight: waiting would only add latency
            remaining = deadline - time.perf_counter()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            if nxt.infer != first.infer or nxt.chw.shape != first.chw.shape:  # another model or frame size
                self._carry = nxt
                break
            batch.append(nxt)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first, self._carry = (self._carry, None) if self._carry is not None else (self._queue.get(), None)
            if first is None:
                break
            batch, stopping = self._collect(first)
            self._process(batch)
        if self._carry is not None:  # stop arrived right behind an item of another model
            self._process([self._carry])
            self._carry = None

    def _process(self, batch: list[_Item]) -> None:
        taken = time.perf_counter()
        try:
            with self._busy:
                t0 = time.perf_counter()
                out = as_output(batch[0].infer(np.stack([it.chw for it in batch])))
                infer_ms = (time.perf_counter() - t0) * 1000.0
        except Exception as exc:  # a bug or a broken backend: every waiting request gets the error
            log.exception("inference failed for a batch of %d", len(batch))
            for it in batch:
                with contextlib.suppress(RuntimeError):
                    it.loop.call_soon_threadsafe(_resolve, it.future, None, exc)
            return
        if self._metrics is not None:
            self._metrics.batch_size.observe(len(batch))
        for i, it in enumerate(batch):
            res = BatchResult(out.probs[i], None if out.maps is None else out.maps[i], len(batch),
                              (taken - it.enqueued) * 1000.0, infer_ms)
            # RuntimeError: the event loop closed under us (shutdown), so nobody is waiting
            with contextlib.suppress(RuntimeError):
                it.loop.call_soon_threadsafe(_resolve, it.future, res, None)
