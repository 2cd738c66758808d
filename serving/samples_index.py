"""The samples index: one row per labelled sample added through the API, in the service's database
(the shared PostgreSQL when several instances serve a plant), so QA sees every instance's samples
in one list. The sample folder and its manifest stay the dataset (``datasets.intake``); the index
says who added what, when and from which verdict.
"""

from __future__ import annotations

import time
from typing import Any

from datasets.intake import IntakeResult, SampleOrigin
from serving.sql import Database, Table

SAMPLES = Table("samples", version=1, columns=(
    ("ts", "REAL NOT NULL"), ("sha256", "TEXT NOT NULL"), ("label", "TEXT NOT NULL"), ("path", "TEXT NOT NULL"),
    ("split", "TEXT NOT NULL"), ("new_class", "INTEGER NOT NULL"), ("via", "TEXT NOT NULL"), ("station", "TEXT"),
    ("verdict_id", "INTEGER"), ("note", "TEXT"),
), indexes=(("samples_ts", ("ts",), False), ("samples_sha256_label", ("sha256", "label"), True)))


class SamplesIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(SAMPLES)

    def add(self, result: IntakeResult, origin: SampleOrigin) -> None:
        """Blocking (run it off the event loop); the same bytes under the same label are listed once."""
        row = (time.time(), result.sha256, result.label, result.path, result.split, int(result.new_class),
               origin.via, origin.station, origin.verdict_id, origin.note)
        conn = self.db.connect()
        try:
            self.db.write(conn, self.db.insert_ignoring(SAMPLES, "sha256, label"), [row])
        finally:
            conn.close()

    def recent(self, *, label: str | None = None, station: str | None = None, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
        where, args = [], []
        for cond, val in (("label = ?", label), ("station = ?", station)):
            if val is not None:
                where.append(cond)
                args.append(val)
        sql = f"SELECT id, {','.join(SAMPLES.names)} FROM samples"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.select(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset))
        return [{**r, "new_class": bool(r["new_class"])} for r in rows]
