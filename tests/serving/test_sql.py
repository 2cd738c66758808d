"""The database layer on both dialects: migrations of an older log, instances migrating at once,
stored text that is not JSON, and the process filter's types."""

from __future__ import annotations

import threading
import time
import uuid

from serving.sql import database
from serving.verdict_store import VERDICTS, VerdictQueries, VerdictRecord, create, store_rows
from tests.serving.conftest import LogDb


def _row(**kw) -> dict:
    base = dict(ts=time.time(), request_id=uuid.uuid4().hex, station="s1", part_id=None, image_sha256="0" * 64,
                verdict="fail", label="scratch", confidence=0.9, defect_score=0.9, scores={}, model_name="m",
                model_version="v", latency_ms=1.0, batch_size=1)
    return VerdictRecord(**{**base, **kw}).row()


def test_a_log_from_before_the_newer_columns_is_migrated_and_keeps_its_rows(log_db: LogDb) -> None:
    db = database(log_db.where)
    old = tuple((c, k) for c, k in VERDICTS.columns if c not in ("regions", "width", "height", "process"))
    sqlite = log_db.kind == "sqlite"
    key = "id INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "id BIGSERIAL PRIMARY KEY"
    cols = ", ".join(f"{c} {k if sqlite else k.replace('REAL', 'DOUBLE PRECISION')}" for c, k in old)
    conn = db.connect()
    conn.execute(f"CREATE TABLE verdicts ({key}, {cols})")
    conn.commit()
    names = [c for c, _ in old]
    db.write(conn, db.sql(f"INSERT INTO verdicts ({','.join(names)}) VALUES ({','.join('?' * len(names))})"),
             [tuple(_row(request_id="old-1")[c] for c in names)])
    conn.close()
    create(db)
    store_rows(db, [_row(request_id="new-1", process={"speed": 1.5}, width=640, height=480)])
    rows = VerdictQueries(db).query(limit=10)
    assert [r["request_id"] for r in rows] == ["new-1", "old-1"]
    assert rows[1]["process"] is None and rows[1]["regions"] == [] and rows[0]["width"] == 640
    versions = db.select("SELECT name, version FROM schema_versions")
    assert {r["name"]: r["version"] for r in versions}["verdicts"] == VERDICTS.version


def test_instances_starting_together_migrate_once_without_errors(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            create(database(postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store_rows(postgres_url, [_row()])
    assert VerdictQueries(postgres_url).count() == 1


def test_stored_text_that_is_not_json_cannot_break_a_query(log_db: LogDb) -> None:
    db = database(log_db.where)
    store_rows(db, [_row(request_id="good", process={"tool": "T3", "speed": 1.25}), _row(request_id="bad")])
    conn = db.connect()
    db.write(conn, db.sql("UPDATE verdicts SET process = ?, scores = ?, regions = ? WHERE request_id = ?"),
             [("{broken", "[1,", "nope", "bad")])
    conn.close()
    q = VerdictQueries(db)
    assert [r["request_id"] for r in q.query(process=("tool", "T3"))] == ["good"]
    assert [r["request_id"] for r in q.query(process=("speed", 1.25))] == ["good"]  # a number as a number
    assert q.query(process=("speed", "1.25")) == []  # text is not the number
    bad = next(r for r in q.query() if r["request_id"] == "bad")
    assert bad["scores"] == {} and bad["regions"] == [] and "_unreadable" in bad["process"]
