"""The verdict log: every verdict appended to SQLite (WAL) by one writer thread, never dropped.

Requests only enqueue a record (an unbounded queue: records are small and the service's
admission limit bounds how fast they arrive), so a slow disk never adds latency to a verdict.
``close`` writes everything still queued. Images of chosen outcomes are kept for QA under a
server-made name (request id), written atomically; no client string reaches the filesystem.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inspection.atomic import write_bytes_atomic

log = logging.getLogger("defectscope.serving")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    station TEXT,
    part_id TEXT,
    image_sha256 TEXT NOT NULL,
    verdict TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    defect_score REAL NOT NULL,
    scores TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    batch_size INTEGER NOT NULL,
    image_path TEXT,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS verdicts_ts ON verdicts (ts);
CREATE INDEX IF NOT EXISTS verdicts_station_ts ON verdicts (station, ts);
"""
_COLUMNS = ("ts", "request_id", "station", "part_id", "image_sha256", "verdict", "label", "confidence",
            "defect_score", "scores", "model_name", "model_version", "latency_ms", "batch_size", "image_path",
            "metadata")
_EXT = {"jpeg": "jpg", "png": "png", "bmp": "bmp", "tiff": "tif", "webp": "webp", "gif": "gif"}


@dataclass(frozen=True)
class VerdictRecord:
    ts: float
    request_id: str
    station: str | None
    part_id: str | None
    image_sha256: str
    verdict: str
    label: str
    confidence: float
    defect_score: float
    scores: dict[str, float]
    model_name: str
    model_version: str
    latency_ms: float
    batch_size: int
    image_path: str | None = None
    metadata: dict[str, Any] | None = None

    def row(self) -> tuple[Any, ...]:
        d = asdict(self)
        d["scores"] = json.dumps(self.scores)
        d["metadata"] = json.dumps(self.metadata) if self.metadata else None
        return tuple(d[c] for c in _COLUMNS)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
    return conn


class VerdictLog:
    def __init__(self, path: Path, *, images_dir: Path | None = None,
                 keep_images_for: Sequence[str] = ("fail", "review")) -> None:
        self.path = Path(path)
        self.images_dir = images_dir
        self.keep_images_for = frozenset(keep_images_for)
        self._queue: queue.Queue[tuple[VerdictRecord, bytes | None, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _connect(self.path) as conn:  # create now, so a bad path fails at startup, not later
            conn.executescript(_SCHEMA)
        conn.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="defectscope-verdict-log", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def append(self, record: VerdictRecord, image: bytes | None = None, image_format: str = "") -> None:
        """Queue a record; ``image`` is kept on disk when its verdict is one of ``keep_images_for``."""
        keep = self.images_dir is not None and record.verdict in self.keep_images_for
        self._queue.put((record, image if keep else None, image_format))

    def flush(self) -> None:
        """Block until every record queued so far is committed."""
        self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _save_image(self, rec: VerdictRecord, image: bytes, fmt: str) -> str | None:
        assert self.images_dir is not None
        day = datetime.fromtimestamp(rec.ts, timezone.utc).strftime("%Y-%m-%d")
        path = self.images_dir / rec.verdict / day / f"{rec.request_id}.{_EXT.get(fmt, 'bin')}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, image)
        except OSError as exc:  # a full disk must not cost the verdict row
            log.error("could not keep image %s: %s", path, exc)
            return None
        return str(path)

    def _write(self, conn: sqlite3.Connection, items: list[tuple[VerdictRecord, bytes | None, str]]) -> None:
        rows = []
        for rec, image, fmt in items:
            path = self._save_image(rec, image, fmt) if image is not None else None
            rows.append(rec.row() if path is None else VerdictRecord(**{**asdict(rec), "image_path": path}).row())
        placeholders = ",".join("?" * len(_COLUMNS))
        while True:  # never drop: retry while the database is locked by another process
            try:
                with conn:
                    conn.executemany(f"INSERT INTO verdicts ({','.join(_COLUMNS)}) VALUES ({placeholders})", rows)
                return
            except sqlite3.OperationalError as exc:
                log.error("verdict log write failed (%s); retrying", exc)
                time.sleep(0.5)

    def _run(self) -> None:
        conn = _connect(self.path)
        done = False
        while not done:
            items = [self._queue.get()]
            while len(items) < 512:  # group what piled up into one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if items[-1] is None or None in items:
                done = True
            batch = [it for it in items if it is not None]
            if batch:
                self._write(conn, batch)
            for _ in items:
                self._queue.task_done()
        conn.close()

    # -- queries (run them off the event loop) ------------------------------------------------
    def query(self, *, since: float | None = None, until: float | None = None, station: str | None = None,
              verdict: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        where, args = [], []
        for cond, val in (("ts >= ?", since), ("ts < ?", until), ("station = ?", station), ("verdict = ?", verdict)):
            if val is not None:
                where.append(cond)
                args.append(val)
        sql = f"SELECT id, {','.join(_COLUMNS)} FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        conn = _connect(self.path)
        try:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute(sql, (*args, limit, offset))]
        finally:
            conn.close()
        for r in rows:
            r["scores"] = json.loads(r["scores"])
            r["metadata"] = json.loads(r["metadata"]) if r["metadata"] else None
        return rows

    def get(self, verdict_id: int) -> dict[str, Any] | None:
        """One logged verdict by its row id, or None. Call it after ``flush`` to see the latest rows."""
        conn = _connect(self.path)
        try:
            conn.row_factory = sqlite3.Row
            row = conn.execute(f"SELECT id, {','.join(_COLUMNS)} FROM verdicts WHERE id = ?", (verdict_id,)).fetchone()
        finally:
            conn.close()
        if row is None:
            return None
        r = dict(row)
        r["scores"] = json.loads(r["scores"])
        r["metadata"] = json.loads(r["metadata"]) if r["metadata"] else None
        return r

    def count(self) -> int:
        conn = _connect(self.path)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
        finally:
            conn.close()
