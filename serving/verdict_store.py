"""The verdict log's store: schema, rows, inserts, and the queries the API and the QA page run,
on SQLite or PostgreSQL (``serving.sql``).

``serving.verdict_log`` writes through it (one writer thread); readers open their own short
connections, so a query never waits for the writer and the writer never waits for a reader
(WAL mode on SQLite). Rows are read back through the same validation clients' metadata passed, so a row
written before today's rules cannot break a page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.metadata import read_back
from serving.sql import Database, Table, database

VERDICTS = Table("verdicts", version=4, columns=(
    ("ts", "REAL NOT NULL"), ("request_id", "TEXT NOT NULL"), ("station", "TEXT"), ("part_id", "TEXT"),
    ("image_sha256", "TEXT NOT NULL"), ("verdict", "TEXT NOT NULL"), ("label", "TEXT NOT NULL"),
    ("confidence", "REAL NOT NULL"), ("defect_score", "REAL NOT NULL"), ("scores", "TEXT NOT NULL"),
    ("model_name", "TEXT NOT NULL"), ("model_version", "TEXT NOT NULL"), ("latency_ms", "REAL NOT NULL"),
    ("batch_size", "INTEGER NOT NULL"), ("image_path", "TEXT"), ("metadata", "TEXT"),
    # added by later versions (a log written before them gets them)
    ("regions", "TEXT"), ("width", "INTEGER"), ("height", "INTEGER"), ("process", "TEXT"),
), indexes=(("verdicts_ts", ("ts",), False), ("verdicts_station_ts", ("station", "ts"), False),
            ("verdicts_request_id", ("request_id",), True)))
COLUMNS = VERDICTS.names
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


def create(db: Database) -> None:
    """The schema, and the columns a log written by an older version lacks."""
    db.migrate(VERDICTS)


def insert(db: Database, conn: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` (``VerdictRecord.row``) in one transaction; a request id already stored is skipped."""
    # .get: a row spilled by an older version lacks the newer columns
    db.write(conn, db.insert_ignoring(VERDICTS, "request_id"), [tuple(r.get(c) for c in COLUMNS) for r in rows])


def store_rows(where: Database | Path | str, rows: Sequence[dict[str, Any]]) -> None:
    """Rows straight into a log, its schema made if need be (imports, benchmarks): no queue, no spill."""
    db = database(where)
    create(db)
    conn = db.connect()
    try:
        insert(db, conn, rows)
    finally:
        conn.close()


class VerdictQueries:
    """Read access to the log (run these off the event loop)."""

    def __init__(self, db: Database | Path | str) -> None:
        self.db = database(db, timeout_s=5.0)

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
            cond, more = self.db.json_equals("process", *process)
            where.append(cond)
            args += more
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

    def station_history(self, station: str, model_version: str, before: float,
                        limit: int) -> list[dict[str, Any]]:
        """A station's newest ``limit`` verdicts by one model version logged before ``before`` (Unix
        time), oldest first, with what its SPC chart needs: whichever instance answered them."""
        rows = self._select("SELECT verdict, defect_score, ts, process FROM verdicts WHERE station = ? AND "
                            "model_version = ? AND ts < ? ORDER BY id DESC LIMIT ?",
                            (station, model_version, before, limit))
        for r in rows:
            r["process"] = read_back(r["process"])
        return rows[::-1]

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
        return self.db.select(sql, args)


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
