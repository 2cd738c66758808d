"""The report's images: each thumbnail and heatmap a small file beside report.html, referenced by
relative path, so opening the report from a share reads only the images on screen (the page
loads them lazily), not every image of the lot inline.

    REPORT_DIR/thumbs/NAME.webp     every inspected image, longer side <= THUMB_SIDE
    REPORT_DIR/heatmaps/NAME.webp   fail and review verdicts, longer side <= HEATMAP_SIDE

NAME is the file's stem, made safe and unique within the report (case-insensitively: shares are
often NTFS); formats and sizes: qa.images. Images qa.batch already made in that form are kept;
others (a journal of an older version) are encoded here, on one background thread: OpenCV
releases the GIL, so it overlaps the model's next batch instead of adding to it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from qa.images import EXT, HEATMAP_QUALITY, HEATMAP_SIDE, THUMB_QUALITY, THUMB_SIDE, encode_view

KINDS = {"thumbnail": ("thumbs", THUMB_SIDE, THUMB_QUALITY), "heatmap": ("heatmaps", HEATMAP_SIDE, HEATMAP_QUALITY)}
WINDOW = 64  # rows whose images may be in flight: memory stays flat however fast results arrive


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def encode(data: bytes, side: int, quality: int) -> bytes | None:
    """``data`` (any image OpenCV reads) with its longer side at most ``side``, as EXT; None if unreadable.
    WebP already small enough (what qa.batch makes) is kept as it is: re-encoding would only cost time
    and detail."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    if EXT == ".webp" and is_webp(data) and max(img.shape[:2]) <= side:
        return data
    return encode_view(img, side, quality)


def _write(path: Path, data: bytes) -> None:
    # rename into place, no fsync: the journal line comes after the file, and a row whose line is
    # missing is inspected again on --resume, so a crash can cost an image but never show a torn one
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # opened by other users from the share
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(out: Path, name: str, images: dict[str, bytes | None]) -> dict[str, str | None]:
    """Encode and write ``images`` (kind -> encoded bytes); the row's ``<kind>_file`` fields."""
    files: dict[str, str | None] = {}
    for kind, data in images.items():
        folder, side, quality = KINDS[kind]
        small = encode(data, side, quality) if data else None
        if small is None:
            files[f"{kind}_file"] = None
            continue
        (out / folder).mkdir(exist_ok=True)
        _write(out / folder / f"{name}{EXT}", small)
        files[f"{kind}_file"] = f"{folder}/{name}{EXT}"
    return files


class Names:
    """One asset name per report row, unique within the report whatever the case."""

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._taken: set[str] = set()

    def keep(self, key: str, row: dict[str, Any]) -> None:
        """Reserve the name a resumed row's files already have."""
        for f in (row.get("thumbnail_file"), row.get("heatmap_file")):
            if f:
                self._by_key[key] = Path(f).stem
                self._taken.add(Path(f).stem.casefold())

    def name(self, key: str, path: str) -> str:
        if key in self._by_key:
            return self._by_key[key]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip(".")[:80] or "image"
        name, n = stem, 1
        while name.casefold() in self._taken:  # the same file name in two folders
            n += 1
            name = f"{stem}-{n}"
        self._taken.add(name.casefold())
        self._by_key[key] = name
        return name


class Pipeline:
    """Rows wait here while their images are encoded and written; ``commit`` gets each row, in
    the order added, once its files are on disk (what the journal may then record)."""

    def __init__(self, out: Path, commit: Callable[[dict[str, Any]], None]) -> None:
        self.out = out
        self.commit = commit
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="defectscope-report-images")
        self._pending: deque[tuple[dict[str, Any], Future[dict[str, str | None]]]] = deque()

    def add(self, row: dict[str, Any], name: str, images: dict[str, bytes | None]) -> None:
        self._pending.append((row, self._pool.submit(store, self.out, name, images)))
        self.flush(wait=len(self._pending) > WINDOW)

    def flush(self, *, wait: bool = False, everything: bool = False) -> None:
        """Commit the rows whose files are written; ``wait``: at least the oldest; ``everything``: all."""
        while self._pending and (everything or wait or self._pending[0][1].done()):
            row, fut = self._pending.popleft()
            row.update(fut.result())  # an OSError from the writing thread surfaces here
            self.commit(row)
            wait = False

    def close(self) -> None:
        try:
            self.flush(everything=True)
        finally:
            self._pool.shutdown(wait=True)
