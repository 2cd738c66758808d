"""Alarm events: kept in the database (an SQLite file of its own, or the shared PostgreSQL:
``serving.sql``) and posted to an optional webhook, both by one
background thread, so neither a slow disk nor a slow webhook ever delays a verdict.

The queue is bounded: alarms are rare (once per episode), so a full queue means the writer is
stuck (an unreachable webhook timing out on every event); new events are then dropped with an
error in the log rather than growing memory. Recent events are also kept in memory, so the
page shows them even with the log switched off.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from serving.sql import Database, Table, database

log = logging.getLogger("defectscope.serving")

ALARMS = Table("alarms", version=2, columns=(
    ("ts", "REAL NOT NULL"), ("station", "TEXT NOT NULL"), ("model_version", "TEXT NOT NULL"),
    ("kind", "TEXT NOT NULL"), ("state", "TEXT NOT NULL"), ("value", "REAL NOT NULL"),
    ("threshold", "REAL NOT NULL"), ("part", "INTEGER NOT NULL"),
    ("message", "TEXT NOT NULL"), ("moved", "TEXT"),  # moved: added by a later version
), indexes=(("alarms_ts", ("ts",), False),))
_COLUMNS = ALARMS.names
MAX_PENDING = 1000
KEEP_RECENT = 200
WRITE_ATTEMPTS = 240  # 60 s: a database server restarting is back within it


class AlarmLog:
    def __init__(self, db: Database | Path | str | None, *, webhook: str | None = None, timeout_s: float = 3.0,
                 on_webhook_failure: Callable[[], None] | None = None) -> None:
        self.db = database(db, timeout_s=30.0) if db is not None else None
        self.webhook = webhook
        self.timeout_s = timeout_s
        self._on_failure = on_webhook_failure
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_PENDING)
        self._recent: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        if self.db is not None:
            self.db.migrate(ALARMS)  # now, so a bad path or an unreachable server fails at startup

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="defectscope-alarm-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(self.timeout_s + 10)
            self._thread = None

    def flush(self) -> None:
        self._queue.join()

    def submit(self, event: dict[str, Any]) -> None:
        """Queue an event (keys: _COLUMNS); never blocks."""
        with self._lock:
            self._recent.append(dict(event))
        try:
            self._queue.put_nowait(dict(event))
        except queue.Full:
            log.error("alarm log queue full (is the webhook unreachable?): dropped %s %s at %s",
                      event["kind"], event["state"], event["station"])

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: from the database when kept there (survives restarts), else from memory."""
        if self.db is None:
            with self._lock:
                return list(reversed(self._recent))[:limit]
        rows = self.db.select(f"SELECT id, {','.join(_COLUMNS)} FROM alarms ORDER BY id DESC LIMIT ?", (limit,))
        return [{**r, "moved": _moved(r["moved"])} for r in rows]

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        client = httpx.Client(timeout=self.timeout_s) if self.webhook else None
        try:
            while True:
                event = self._queue.get()
                try:
                    if event is None:
                        return
                    if self.db is not None:
                        self._insert(event)
                    if client is not None:
                        self._post(client, event)
                finally:
                    self._queue.task_done()
        finally:
            self._disconnect()
            if client is not None:
                client.close()

    def _insert(self, event: dict[str, Any]) -> None:
        assert self.db is not None
        sql = self.db.sql(f"INSERT INTO alarms ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})")
        for attempt in range(WRITE_ATTEMPTS):
            try:
                if self._conn is None:
                    self._conn = self.db.connect()
                self.db.write(self._conn, sql, [tuple(_cell(event, c) for c in _COLUMNS)])
                return
            except self.db.errors as exc:  # locked by another process, a server restarting: wait a little
                if attempt % 40 == 0:  # one line per 10 s of trying, not four a second
                    log.error("alarm log write failed (%s), attempt %d of %d", exc, attempt + 1, WRITE_ATTEMPTS)
                self._disconnect()
                threading.Event().wait(0.25)
        log.error("alarm not logged after %d attempts: %s %s at %s", WRITE_ATTEMPTS, event["kind"], event["state"],
                  event["station"])

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as exc:  # a dropped connection may fail to close: it is gone either way
                log.debug("closing the alarm database connection: %s", exc)
            self._conn = None

    def _post(self, client: httpx.Client, event: dict[str, Any]) -> None:
        body = {"event": f"alarm.{event['state']}", **event}
        try:
            r = client.post(self.webhook, json=body)  # type: ignore[arg-type]
            r.raise_for_status()
        except httpx.HTTPError as exc:
            log.error("alarm webhook %s failed: %s", self.webhook, exc)
            if self._on_failure is not None:
                self._on_failure()


def _cell(event: dict[str, Any], column: str) -> Any:
    if column == "moved":
        return json.dumps(event.get("moved") or [])
    return event[column]


def _moved(text: str | None) -> list[dict[str, Any]]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []
