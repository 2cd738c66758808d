"""The verdict log's SQLite store: schema, rows, inserts, and the queries the API and the QA page run.

``serving.verdict_log`` writes through it (one writer thread); readers open their own short
connections, so a query never waits for the writer and the writer never waits for a reader
(WAL mode). Rows are read back through the same validation clients' metadata passed, so a row
written before today's rules cannot break a page.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.metadata import read_back

SCHEMA = """
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
    metadata TEXT,
    regions TEXT,
    width INTEGER,
    height INTEGER,
    process TEXT
);
CREATE INDEX IF NOT EXISTS verdicts_ts ON verdicts (ts);
CREATE INDEX IF NOT EXISTS verdicts_station_ts ON verdicts (station, ts);
CREATE UNIQUE INDEX IF NOT EXISTS verdicts_request_id ON verdicts (request_id);
"""
COLUMNS = ("ts", "request_id", "station", "part_id", "image_sha256", "verdict", "label", "confidence",
            "defect_score", "scores", "model_name", "model_version", "latency_ms", "batch_size", "image_path",
            "metadata", "regions", "width", "height", "process")
# columns later versions added: a log written before them gets them
ADDED_COLUMNS = {"regions": "TEXT", "width": "INTEGER", "height": "INTEGER", "process": "TEXT"}
INSERT = f"INSERT OR IGNORE INTO verdicts ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
BUSY_TIMEOUT_S = 1.0  # short, so a database locked by another process is spilled around, not waited on


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
    regions: list[dict[str, Any]] | None = None  # inspection.regions.Region.to_dict() of a map network
    width: int | None = None  # the frame as captured: what region boxes are in
    height: int | None = None
    process: dict[str, Any] | None = None  # the part's process parameters (serving.metadata.check_process)

    def row(self, image_path: str | None = None) -> dict[str, Any]:
        """The database row (JSON columns as text): also the spill file's record."""
        d = asdict(self)
        d["scores"] = json.dumps(self.scores)
        d["metadata"] = json.dumps(self.metadata) if self.metadata else None
        d["regions"] = json.dumps(self.regions) if self.regions else None
        d["process"] = json.dumps(self.process) if self.process else None
        d["image_path"] = image_path or self.image_path
        return {c: d[c] for c in COLUMNS}


def asdict_shallow(rec: VerdictRecord) -> dict[str, Any]:
    """The record's fields without recursing into them (dataclasses.asdict deep-copies)."""
    return {c: getattr(rec, c) for c in COLUMNS}


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
    except BaseException:
        # a connection left open keeps SQLite's shared-memory index alive, and a broken one (disk
        # full while it grew) is only rebuilt when the last connection has closed
        conn.close()
        raise
    return conn


def create(conn: sqlite3.Connection) -> None:
    """The schema, and the columns a log written by an older version lacks."""
    conn.executescript(SCHEMA)
    have = {r[1] for r in conn.execute("PRAGMA table_info(verdicts)")}
    with conn:
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE verdicts ADD COLUMN {name} {kind}")


def insert(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    with conn:  # .get: a row spilled by an older version lacks the newer columns
        conn.executemany(INSERT, [tuple(r.get(c) for c in COLUMNS) for r in rows])



class VerdictQueries:
    """Read access to the log (run these off the event loop)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def query(self, *, since: float | None = None, until: float | None = None, station: str | None = None,
              verdict: str | None = None, process: tuple[str, Any] | None = None, limit: int = 100,
              offset: int = 0) -> list[dict[str, Any]]:
        """``process``: (parameter, value): only parts whose process parameter had that value."""
        where, args = [], []
        for cond, val in (("ts >= ?", since), ("ts < ?", until), ("station = ?", station), ("verdict = ?", verdict)):
            if val is not None:
                where.append(cond)
                args.append(val)
        if process is not None:
            where.append("CASE WHEN json_valid(process) THEN json_extract(process, ?) END = ?")  # no row can break it
            args += [f'$."{process[0]}"', process[1]]
        sql = f"SELECT id, {','.join(COLUMNS)} FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        return [_readable(r) for r in self._select(sql, (*args, limit, offset))]

    def get(self, verdict_id: int) -> dict[str, Any] | None:
        """One logged verdict by its row id, or None. Call it after ``flush`` to see the latest rows."""
        rows = self._select(f"SELECT id, {','.join(COLUMNS)} FROM verdicts WHERE id = ?", (verdict_id,))
        return _readable(rows[0]) if rows else None

    def count(self) -> int:
        return int(self._select("SELECT COUNT(*) AS n FROM verdicts", ())[0]["n"])

    def stations(self, limit: int) -> list[str]:
        """Station ids seen, most recently active first."""
        rows = self._select("SELECT station, MAX(ts) AS last FROM verdicts WHERE station IS NOT NULL "
                            "GROUP BY station ORDER BY last DESC LIMIT ?", (limit,))
        return [r["station"] for r in rows]

    def for_analysis(self, *, since: float | None = None, until: float | None = None,
                     stations: Sequence[str] = (), model_version: str | None = None,
                     limit: int = 200_000) -> list[dict[str, Any]]:
        """The newest ``limit`` verdicts in a range (oldest first) with what a process analysis needs."""
        where, args = [], []
        for cond, val in (("ts >= ?", since), ("ts < ?", until), ("model_version = ?", model_version)):
            if val is not None:
                where.append(cond)
                args.append(val)
        if stations:
            where.append(f"station IN ({','.join('?' * len(stations))})")
            args.extend(stations)
        sql = "SELECT id, ts, station, verdict, label, model_version, process FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._select(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        for r in rows:
            r["process"] = read_back(r["process"])
        return rows[::-1]

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        conn = sqlite3.connect(str(self.path), timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, args)]
        finally:
            conn.close()


def _readable(r: dict[str, Any]) -> dict[str, Any]:
    """A stored row as readers get it; a column written before today's validation cannot break a page."""
    try:
        scores = json.loads(r["scores"])
    except (TypeError, ValueError, RecursionError):
        scores = {}
    r["scores"] = {str(k): float(v) for k, v in scores.items() if isinstance(v, int | float)} \
        if isinstance(scores, dict) else {}
    r["metadata"] = read_back(r["metadata"])
    r["process"] = read_back(r.get("process"))
    r["regions"] = _regions(r.get("regions"))
    return r


def _regions(text: Any) -> list[dict[str, Any]]:
    try:
        raw = json.loads(text) if text else []
    except (TypeError, ValueError, RecursionError):
        return []
    out = []
    for reg in raw if isinstance(raw, list) else []:
        try:
            out.append({"box": [int(v) for v in reg["box"]][:4], "area": int(reg["area"]), "peak": float(reg["peak"]),
                        "label": str(reg["label"])[:64], "peak_xy": [int(v) for v in reg.get("peak_xy", [0, 0])][:2]})
        except (KeyError, TypeError, ValueError):
            continue
    return out
