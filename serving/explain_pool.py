"""Heatmaps for the service, on their own thread, so they never delay a station's verdict.

A Grad-CAM heatmap costs a PyTorch forward and backward pass, tens to hundreds of times a
verdict's inference (a map network's overlay is cheap: its map came with the verdict).
Requests for one take a slot here before any work is done (at most
``max_pending`` at once, else 503), run one at a time on a thread of their own at the lowest CPU
priority (the decode pool and the inference worker stay free for stations, and keep the cores
when both want them: serving.background), and are drawn on the frame shrunk to
``side`` pixels: the map is computed at model resolution anyway, and a full-size overlay of
a 64-megapixel frame would take seconds to draw and megabytes to send.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from inspection.imageops import shrink
from inspection.overlay import MapExplainer
from inspection.predictor import Item, Predictor
from serving.background import background_pool
from serving.errors import ApiError


class ExplainPool:
    def __init__(self, max_pending: int, side: int, retry_after_s: int = 1) -> None:
        self.max_pending, self.side, self.retry_after_s = max_pending, side, retry_after_s
        self._executor = background_pool(1, "defectscope-explain")
        self._pending = 0
        self._explainer: Any = None  # inspection.explain.Explainer of the model now serving
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, required: bool = True) -> Iterator[bool]:
        """Hold a heatmap slot for the block (yields True). When all are taken: 503 at once, or with
        ``required`` False yield False (the caller goes on without a heatmap)."""
        if self._pending >= self.max_pending:
            if not required:
                yield False
                return
            raise ApiError(503, "explain_busy", f"{self.max_pending} heatmaps are being computed: retry, or "
                           "inspect without explain=true", headers={"Retry-After": str(self.retry_after_s)})
        self._pending += 1
        try:
            yield True
        finally:
            self._pending -= 1

    async def run(self, fn: Any, *args: Any) -> Any:
        """Other work of a heatmap request (decoding its image) on the same low-priority thread, so a
        client asking for heatmaps of huge frames does not hold the stations' decode threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def view(self, image: np.ndarray) -> np.ndarray:
        """The frame as heatmaps are drawn on it (longer side at most ``side``)."""
        return shrink(image, self.side)

    async def explain(self, predictor: Predictor, item: Item) -> Any:
        """An Explanation over ``item.image`` (a ``view`` of the frame), for an item the predictor
        prepared (hold a ``slot``). A map network's overlay is its own defect map (inferred here
        when the item has none yet); other networks get Grad-CAM."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, predictor, item)

    def _run(self, predictor: Predictor, item: Item) -> Any:
        if predictor.card.has_map:
            if item.map is None:
                item = predictor.classify([item])[0]
            return MapExplainer(predictor.card).explain_items([item], [item.image])[0]
        from inspection.explain import Explainer  # torch: loaded on the first heatmap only

        with self._lock:
            ex = self._explainer
            if ex is None or ex.card.version != predictor.card.version:
                ex = self._explainer = Explainer(predictor.bundle, threads=1)
        return ex.explain_items([item], [item.image])[0]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
