"""Inspect a folder tree: files in a stable order, decoded in worker threads while the model
infers the previous batch, one ItemResult per file (a verdict, or an error with its reason).

Threads suffice for the overlap: OpenCV's decoder and resizer, hashlib and ONNX Runtime all
release the GIL. Work in flight is bounded (a window of batches), so memory stays flat on
folders of any size.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.errors import DefectscopeError, ImageDecodeError, PreprocessError
from inspection.explain import Explainer, Explanation, encode_image
from inspection.inspector import Inspector
from inspection.types import Frame, Outcome, Verdict

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})
THUMB_SIDE = 128  # pixels, longer side, of the report's thumbnails
HEATMAP_SIDE = 320  # longer side of the stored heatmap overlays


class InputPathError(DefectscopeError):
    """A path or pattern given to the batch tool names nothing."""


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .cache, .git, report temp folders
        found.extend(Path(root, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found, key=lambda p: p.parts)


def collect_paths(specs: Iterable[str | Path]) -> list[Path]:
    """Files, folders (recursive, image suffixes only, hidden entries skipped) and glob patterns,
    in the order given, each folder or pattern sorted; a file named twice is listed once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for spec in specs:
        s = str(spec)
        p = Path(s)
        if p.is_dir():
            paths = _walk(p)
        elif p.exists() or p.is_symlink():
            paths = [p]  # named explicitly: inspected whatever its suffix, so a bad file becomes an error row
        elif glob.has_magic(s):
            hits = sorted(glob.glob(s, recursive=True))
            paths = [Path(h) for h in hits if Path(h).is_file()]
            if not paths:
                raise InputPathError(f"the pattern {s!r} matches no file")
        else:
            raise InputPathError(f"{s} does not exist: give image files, folders or glob patterns")
        for path in paths:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


@dataclass(frozen=True, eq=False)
class ItemResult:
    """The outcome for one file: ``verdict`` or ``error`` is set. ``thumbnail`` (JPEG) and
    ``heatmap`` (JPEG overlay, fail and review only, when asked) are encoded bytes."""

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


@dataclass(frozen=True, eq=False)
class _Loaded:
    path: str
    sha256: str | None = None
    frame: Frame | None = None
    chw: np.ndarray | None = None
    thumbnail: bytes | None = None
    error: str | None = None
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` with its longer side at most ``side`` pixels (area-averaged), else unchanged."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


ProgressFn = Callable[[ItemResult], None]


class BatchRunner:
    """Runs an Inspector over files. ``workers`` threads read, hash, decode and preprocess;
    the calling thread infers ``inspector.batch_size`` frames at a time and, when an
    ``explainer`` is given, computes heatmaps for the outcomes in ``explain``."""

    def __init__(self, inspector: Inspector, *, workers: int = 2, explainer: Explainer | None = None,
                 explain: Collection[Outcome] = (Outcome.FAIL, Outcome.REVIEW), thumbnails: bool = True,
                 window: int = 3) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.inspector = inspector
        self.workers = workers
        self.explainer = explainer
        self.explain_outcomes = frozenset(explain)
        self.thumbnails = thumbnails
        self.window = max(1, window)

    # -- worker side ---------------------------------------------------------------------------
    def _load(self, path: Path) -> _Loaded:
        name = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return _Loaded(name, error=f"cannot read the file: {exc.strerror or exc}")
        sha = hashlib.sha256(data).hexdigest()
        try:
            t0 = time.perf_counter()
            frame = self.inspector.decode(data, source=name)
            t1 = time.perf_counter()
            chw = self.inspector.preprocess(frame)
            t2 = time.perf_counter()
        except (ImageDecodeError, PreprocessError) as exc:  # ImageTooLargeError is an ImageDecodeError
            return _Loaded(name, sha, error=str(exc))
        thumb = encode_image(shrink(frame.image, THUMB_SIDE), ".jpg", 80) if self.thumbnails else None
        return _Loaded(name, sha, frame, chw, thumb, decode_ms=(t1 - t0) * 1e3, preprocess_ms=(t2 - t1) * 1e3)

    # -- calling thread ------------------------------------------------------------------------
    def run(self, paths: Sequence[Path], progress: ProgressFn | None = None) -> Iterator[ItemResult]:
        """ItemResults in the order of ``paths``; never raises for a bad file."""
        bs = self.inspector.batch_size
        ahead = bs * (self.window + 1) + self.workers
        with ThreadPoolExecutor(self.workers, thread_name_prefix="defectscope-batch") as pool:
            pending: deque[Future[_Loaded]] = deque()
            it = iter(paths)
            chunk: list[_Loaded] = []
            n_ok = 0

            def refill() -> None:
                while len(pending) < ahead:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    pending.append(pool.submit(self._load, nxt))

            refill()
            while pending:
                item = pending.popleft().result()
                refill()
                chunk.append(item)
                n_ok += item.error is None
                if n_ok == bs or not pending:
                    for res in self._finish(chunk):
                        if progress is not None:
                            progress(res)
                        yield res
                    chunk, n_ok = [], 0

    def _finish(self, chunk: list[_Loaded]) -> list[ItemResult]:
        ok = [c for c in chunk if c.error is None]
        verdicts: dict[int, Verdict] = {}
        judged = []
        for c in ok:  # frames the quality gate refused skip the classifier: verdict invalid
            q = self.inspector.quality(c.frame)  # type: ignore[arg-type]
            if q is None or q.ok:
                judged.append(c)
            else:
                timings = {"decode": c.decode_ms, "preprocess": c.preprocess_ms}
                verdicts[id(c)] = self.inspector.verdict(c.frame, None, timings, batch_size=0)  # type: ignore[arg-type]
        if judged:
            t0 = time.perf_counter()
            probs = self.inspector.infer(np.stack([c.chw for c in judged]))  # type: ignore[misc]
            infer_ms = (time.perf_counter() - t0) * 1e3
            for c, p in zip(judged, probs, strict=True):
                timings = {"decode": c.decode_ms, "preprocess": c.preprocess_ms, "inference": infer_ms}
                verdicts[id(c)] = self.inspector.verdict(c.frame, p, timings,  # type: ignore[arg-type]
                                                         batch_size=len(judged))
        heat = self._heatmaps([c for c in ok if verdicts[id(c)].outcome in self.explain_outcomes])
        out = []
        for c in chunk:
            if c.error is not None:
                out.append(ItemResult(c.path, c.sha256, error=c.error))
                continue
            frame = c.frame
            assert frame is not None  # set whenever error is None
            ex = heat.get(id(c))
            out.append(ItemResult(
                c.path, c.sha256, frame.size, verdicts[id(c)], thumbnail=c.thumbnail,
                heatmap=None if ex is None else encode_image(shrink(ex.overlay, HEATMAP_SIDE), ".jpg", 85),
                heatmap_target=None if ex is None else ex.target,
                heatmap_peak=None if ex is None else _to_captured(ex.peak, frame),
            ))
        return out

    def _heatmaps(self, items: list[_Loaded]) -> dict[int, Explanation]:
        if self.explainer is None or not items:
            return {}
        frames = [c.frame for c in items]
        exps = self.explainer.explain_batch(
            [f.image for f in frames],  # type: ignore[union-attr]
            captured=[f.size for f in frames],  # type: ignore[union-attr]
            inputs=np.stack([c.chw for c in items]),  # type: ignore[misc]
        )
        return {id(c): e for c, e in zip(items, exps, strict=True)}


def _to_captured(peak: tuple[int, int], frame: Frame) -> tuple[int, int]:
    """A point on the (possibly reduced) decoded image -> captured pixels."""
    h, w = frame.image.shape[:2]
    ch, cw = frame.size
    return round((peak[0] + 0.5) * cw / w - 0.5), round((peak[1] + 0.5) * ch / h - 0.5)
