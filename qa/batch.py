"""Inspect a folder tree: files in a stable order through the one predictor, decoded in worker
threads while the model infers the previous batch, one ItemResult per file (a verdict, or an error
with its reason).

Threads suffice for the overlap: OpenCV's decoder and resizer, hashlib and ONNX Runtime all
release the GIL. Work in flight is bounded (a window of batches), so memory stays flat on
folders of any size. Only the scheduling is this module's: every stage is ``Predictor``'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inspection.errors import ImageDecodeError
from inspection.imageops import shrink
from inspection.predictor import Item, Predictor
from inspection.timing import StageClock
from inspection.types import Outcome, Verdict
from qa.images import HEATMAP_QUALITY, HEATMAP_SIDE, THUMB_QUALITY, THUMB_SIDE, encode_view

EXPLAIN_SIDE = 320  # longer side of the view heatmaps are computed on


@dataclass(frozen=True, eq=False)
class ItemResult:
    """The report's record of one file: ``verdict`` or ``error`` is set. ``thumbnail`` and ``heatmap``
    (the overlay, fail and review only, when asked) are encoded as the report stores them (qa.images)."""

    path: str
    sha256: str | None = None
    size: tuple[int, int] | None = None  # (height, width) as captured
    verdict: Verdict | None = None
    error: str | None = None
    thumbnail: bytes | None = None
    heatmap: bytes | None = None
    heatmap_target: str | None = None
    heatmap_peak: tuple[int, int] | None = None  # (x, y) in captured pixels

    @property
    def outcome(self) -> str:
        return self.verdict.outcome.value if self.verdict is not None else "error"


ProgressFn = Callable[[ItemResult], None]


class BatchRunner:
    """Runs a Predictor over files. ``workers`` threads read, hash, decode and preprocess; the
    calling thread infers ``predictor.batch_size`` images at a time and, when an ``explainer``
    is given, computes heatmaps for the outcomes in ``explain``."""

    def __init__(self, predictor: Predictor, *, workers: int = 2, explainer: Any = None,
                 explain: Collection[Outcome] = (Outcome.FAIL, Outcome.REVIEW), thumbnails: bool = True,
                 window: int = 3) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.predictor = predictor
        self.workers = workers
        self.explainer = explainer  # inspection.overlay.explainer_for(bundle): the map, or Grad-CAM (torch)
        self.explain_outcomes = frozenset(explain)
        self.thumbnails = thumbnails
        self.window = max(1, window)

    # -- worker side ---------------------------------------------------------------------------
    def _load(self, path: Path) -> tuple[Item, bytes | None]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Item(str(path), error=ImageDecodeError(f"cannot read the file: {exc.strerror or exc}")), None
        keep = self.thumbnails or self.explainer is not None
        item = self.predictor.load(data, source=str(path), keep_image=keep, sha256=True)
        if item.image is None:
            return item, None
        # the thumbnail is made here, in the worker; the frame stays only where a heatmap may need it
        thumb = encode_view(item.image, THUMB_SIDE, THUMB_QUALITY) if self.thumbnails else None
        return (item if self.explainer is not None else replace(item, image=None)), thumb

    # -- calling thread ------------------------------------------------------------------------
    def run(self, paths: Sequence[Path], progress: ProgressFn | None = None) -> Iterator[ItemResult]:
        """ItemResults in the order of ``paths``; never raises for a bad file."""
        bs = self.predictor.batch_size
        ahead = bs * (self.window + 1) + self.workers
        with ThreadPoolExecutor(self.workers, thread_name_prefix="defectscope-batch") as pool:
            pending: deque[Future[tuple[Item, bytes | None]]] = deque()
            it = iter(paths)
            chunk: list[tuple[Item, bytes | None]] = []
            n_ok = 0

            def refill() -> None:
                while len(pending) < ahead:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    pending.append(pool.submit(self._load, nxt))

            refill()
            while pending:
                loaded = pending.popleft().result()
                refill()
                chunk.append(loaded)
                n_ok += loaded[0].ok
                if n_ok == bs or not pending:
                    for res in self._finish(chunk):
                        if progress is not None:
                            progress(res)
                        yield res
                    chunk, n_ok = [], 0

    def _finish(self, chunk: list[tuple[Item, bytes | None]]) -> list[ItemResult]:
        items = self.predictor.run([item for item, _ in chunk])
        heat = self._heatmaps([it for it in items if it.verdict is not None
                               and it.verdict.outcome in self.explain_outcomes])
        out = []
        for item, (_, thumb) in zip(items, chunk, strict=True):
            if item.verdict is None:
                out.append(ItemResult(item.source, item.sha256, error=str(item.error)))
                continue
            ex = heat.get(item.frame_id)
            out.append(ItemResult(
                item.source, item.sha256, item.size, item.verdict, thumbnail=thumb,
                heatmap=None if ex is None else encode_view(ex.overlay, HEATMAP_SIDE, HEATMAP_QUALITY),
                heatmap_target=None if ex is None else ex.target,
                heatmap_peak=None if ex is None else ex.peak_captured,
            ))
        return out

    def _heatmaps(self, items: list[Item]) -> dict[str, Any]:
        if self.explainer is None or not items:
            return {}
        clock = StageClock()
        with clock.stage("explain"):
            views = [shrink(it.image, EXPLAIN_SIDE) for it in items]  # type: ignore[arg-type]
            exps = self.explainer.explain_items(items, views)
        return {it.frame_id: _Located(e, it.size, v.shape[:2]) for it, e, v in zip(items, exps, views, strict=True)}


@dataclass(frozen=True)
class _Located:
    """An explanation drawn on a shrunk view, with its peak mapped back to captured pixels."""

    explanation: Any
    captured: tuple[int, int] | None
    view_hw: tuple[int, int]

    @property
    def overlay(self) -> Any:
        return self.explanation.overlay

    @property
    def target(self) -> str:
        return self.explanation.target

    @property
    def peak_captured(self) -> tuple[int, int]:
        (x, y), (h, w) = self.explanation.peak, self.view_hw
        ch, cw = self.captured or (h, w)
        return round((x + 0.5) * cw / w - 0.5), round((y + 0.5) * ch / h - 0.5)

