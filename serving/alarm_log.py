"""Alarm events: kept in SQLite (its own file, WAL) and posted to an optional webhook, both by one
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
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("defectscope.serving")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    station TEXT NOT NULL,
    model_version TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    part INTEGER NOT NULL,
    message TEXT NOT NULL,
    moved TEXT
);
CREATE INDEX IF NOT EXISTS alarms_ts ON alarms (ts);
"""
_COLUMNS = ("ts", "station", "model_version", "kind", "state", "value", "threshold", "part", "message", "moved")
MAX_PENDING = 1000
KEEP_RECENT = 200


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class AlarmLog:
    def __init__(self, path: Path | None, *, webhook: str | None = None, timeout_s: float = 3.0,
                 on_webhook_failure: Callable[[], None] | None = None) -> None:
        self.path = path
        self.webhook = webhook
        self.timeout_s = timeout_s
        self._on_failure = on_webhook_failure
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_PENDING)
        self._recent: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path)  # create now, so a bad path fails at startup
            with conn:
                conn.executescript(_SCHEMA)
                if "moved" not in {r[1] for r in conn.execute("PRAGMA table_info(alarms)")}:  # an older log
                    conn.execute("ALTER TABLE alarms ADD COLUMN moved TEXT")
            conn.close()

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
        """Newest first: from SQLite when kept there (survives restarts), else from memory."""
        if self.path is None:
            with self._lock:
                return list(reversed(self._recent))[:limit]
        conn = _connect(self.path)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT id, {','.join(_COLUMNS)} FROM alarms ORDER BY id DESC LIMIT ?", (limit,))
            return [{**dict(r), "moved": _moved(r["moved"])} for r in rows]
        finally:
            conn.close()

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        conn = _connect(self.path) if self.path is not None else None
        client = httpx.Client(timeout=self.timeout_s) if self.webhook else None
        try:
            while True:
                event = self._queue.get()
                try:
                    if event is None:
                        return
                    if conn is not None:
                        self._insert(conn, event)
                    if client is not None:
                        self._post(client, event)
                finally:
                    self._queue.task_done()
        finally:
            if conn is not None:
                conn.close()
            if client is not None:
                client.close()

    def _insert(self, conn: sqlite3.Connection, event: dict[str, Any]) -> None:
        for attempt in range(20):
            try:
                with conn:
                    conn.execute(f"INSERT INTO alarms ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                                 tuple(_cell(event, c) for c in _COLUMNS))
                return
            except sqlite3.OperationalError as exc:  # locked by another process: wait a little
                log.error("alarm log write failed (%s), attempt %d", exc, attempt + 1)
                threading.Event().wait(0.25)

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
