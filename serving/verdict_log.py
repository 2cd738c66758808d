"""The verdict log: every answered verdict reaches the database (an SQLite file, or PostgreSQL shared
by several instances: ``serving.sql``), or a spill file until it can.

Requests only queue a record, so a slow disk adds no latency to a verdict; one writer thread
groups what piled up into transactions. The log is the plant's audit trail, so nothing that
was answered may be lost, and nothing may grow without bound:

* The queue is bounded (``max_backlog`` records). When it is full, ``append`` raises
  ``VerdictLogFull`` and the service answers 503 instead of a verdict it could not record.
  Images kept for QA have their own byte budget; past it a verdict is logged without its image.
* When the database refuses a write (disk full, locked by another process), the batch goes to
  a spill file (JSON lines, fsynced) and the writer retries; once the database takes writes
  again the spill file is replayed. Rows carry a unique request id, so a replay never doubles one.
* A row the database can never take goes to a dead-letter file, is counted, and the writer
  goes on: no exception stops it.
* ``close(timeout)`` flushes what it can within the deadline, puts the rest in the spill file
  (or, if that disk refuses too, an emergency file in the temp folder) and says where.

Kept images get a server-made name (request id); no client string reaches the filesystem.
"""

from __future__ import annotations

import logging
import queue
import reprlib
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inspection.atomic import write_bytes_atomic
from inspection.errors import DefectscopeError
from serving.spill import JsonLines
from serving.sql import Database, SqliteDb, database
from serving.verdict_store import BUSY_TIMEOUT_S, COLUMNS, VerdictQueries, VerdictRecord, asdict_shallow, create, insert

log = logging.getLogger("defectscope.serving")

_EXT = {"jpeg": "jpg", "png": "png", "bmp": "bmp", "tiff": "tif", "webp": "webp", "gif": "gif"}
RETRY_S = 1.0
BEHIND_S = 10.0  # queued records older than this: the log is falling behind


class VerdictLogFull(DefectscopeError):
    """The log cannot take another record now (its queue is full): the verdict must not be answered."""


class VerdictLog:
    def __init__(self, db: Database | Path | str, *, images_dir: Path | None = None,
                 keep_images_for: Sequence[str] = ("fail", "review"), max_backlog: int = 50_000,
                 max_pending_image_bytes: int = 256 * 1024 * 1024, spill_dir: Path | None = None) -> None:
        self.db = database(db, timeout_s=BUSY_TIMEOUT_S)
        self.path = self.db.where()  # for messages
        # the database's state, not the row: spill and retry (anything else is the row's fault)
        self._db_errors = self.db.errors
        self.images_dir = images_dir
        self.keep_images_for = frozenset(keep_images_for)
        self.max_backlog = max_backlog
        self.max_pending_image_bytes = max_pending_image_bytes
        # next to an SQLite file; a server has no folder of ours: the working one
        home = self.db.path.parent if isinstance(self.db, SqliteDb) else Path(".")
        spill_root = Path(spill_dir) if spill_dir is not None else home
        self.spill = JsonLines(spill_root / f"{self.db.spill_name()}.spill.jsonl")
        self.dead_letter = JsonLines(spill_root / f"{self.db.spill_name()}.dead-letter.jsonl")
        self._queue: queue.Queue[tuple[VerdictRecord, bytes | None, str]] = queue.Queue(max_backlog)
        self._unsaved: deque[dict[str, Any]] = deque()  # rows neither the database nor the spill file took
        self._inflight: list[dict[str, Any]] = []
        self._pending = 0  # appended and not yet in the database, the spill file or the dead letters
        self._conn: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pending_image_bytes = 0
        self._image_error_logged = -1e9
        self.last_progress = time.monotonic()
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.counts = {"written": 0, "spilled": 0, "replayed": 0, "dead_letters": 0, "images_not_kept": 0,
                       "write_errors": 0, "refused": 0}
        create(self.db)  # now, so a bad path or an unreachable server fails at startup, not later
        # SQLite readers may wait longer for a lock than the writer, which spills instead
        self.queries = VerdictQueries(self.db.path if isinstance(self.db, SqliteDb) else self.db)

    # -- the request side ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="defectscope-verdict-log", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Records appended that are not yet safe (in the database, the spill file or the dead letters)."""
        return self._pending

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def append(self, record: VerdictRecord, image: bytes | None = None, image_format: str = "") -> None:
        """Queue a record; ``image`` is kept on disk when its verdict is one of ``keep_images_for``.

        Raises VerdictLogFull when the record cannot be taken: the caller must not answer the verdict.
        """
        if not self.alive or self._stop.is_set():
            self.counts["refused"] += 1
            raise VerdictLogFull("the verdict log is not running: the service is stopping")
        keep = self.images_dir is not None and record.verdict in self.keep_images_for and image is not None
        with self._lock:
            if self.backlog >= self.max_backlog:
                self.counts["refused"] += 1
                why = self.last_error or "a slow disk"
                raise VerdictLogFull(f"the verdict log is {self.backlog:,} records behind ({why}): retry later; "
                                     "the operator should check the verdict database's disk")
            if keep and self.pending_image_bytes + len(image) > self.max_pending_image_bytes:
                keep = False
                self.counts["images_not_kept"] += 1
            if keep:
                self.pending_image_bytes += len(image)
            self._queue.put_nowait((record, image if keep else None, image_format))
            self._pending += 1

    def status(self) -> tuple[str, str | None]:
        """("ok" | "behind" | "failing" | "dead", what is wrong) for /readyz and /metrics."""
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return "dead", "the verdict log writer stopped"
        if self.failing_since is not None:
            return "failing", (f"the verdict database refuses writes ({self.last_error}); verdicts go to "
                               f"{self.spill.path} until it recovers")
        if self.backlog and time.monotonic() - self.last_progress > BEHIND_S:
            return "behind", f"{self.backlog:,} verdicts waiting for more than {BEHIND_S:.0f} s"
        return "ok", None

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record queued so far is in the database (or spilled); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.backlog:
            if time.monotonic() > deadline or not self.alive:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 15.0) -> None:
        """Stop within ``timeout``: what the writer could not store by then is saved elsewhere, and said so."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        stuck = self._thread.is_alive()
        self._thread = None
        rest = list(self._inflight) if stuck else []  # a stuck write may never commit: save it too
        rest += self._drain()
        if rest:
            self._save_elsewhere(rest, "at shutdown")
            self._pending = 0

    # -- the writer thread -----------------------------------------------------------------------
    def _drain(self) -> list[dict[str, Any]]:
        rows = []
        with self._lock:
            while self._unsaved:
                rows.append(self._unsaved.popleft())
        while True:
            try:
                rec, image, _fmt = self._queue.get_nowait()
            except queue.Empty:
                return rows
            if image is not None:
                self.pending_image_bytes -= len(image)
            rows.append(self._row(rec, None))

    def _row(self, rec: VerdictRecord, image_path: str | None) -> dict[str, Any]:
        try:
            return rec.row(image_path)
        except Exception as exc:  # JSON that cannot be written (the validator should make this impossible)
            salvage = asdict_shallow(rec)
            for k in ("metadata", "process"):
                salvage[k] = reprlib.repr(getattr(rec, k))  # bounded depth and length, unlike repr()
            self._dead(salvage, exc)
            return {}

    def _dead(self, record: dict[str, Any], exc: BaseException) -> None:
        self.counts["dead_letters"] += 1
        log.error("verdict %s cannot be logged (%s: %s); it goes to %s", record.get("request_id"),
                  exc.__class__.__name__, exc, self.dead_letter.path)
        try:
            self.dead_letter.append([{**record, "error": f"{exc.__class__.__name__}: {exc}"}])
        except OSError as err:
            log.error("the dead-letter file %s refuses writes too (%s): %s", self.dead_letter.path, err, record)

    def _save_elsewhere(self, rows: list[dict[str, Any]], when: str) -> None:
        for target in (self.spill, JsonLines(Path(tempfile.gettempdir()) / self.spill.path.name)):
            try:
                target.append(rows)
                self.counts["spilled"] += len(rows)
                log.warning("%d verdicts not yet in %s %s were saved to %s; the next start replays them",
                            len(rows), self.path, when, target.path)
                return
            except OSError as exc:
                log.error("cannot save verdicts to %s: %s", target.path, exc)
        log.critical("%d verdicts could not be saved anywhere %s: %s", len(rows), when, rows)

    def _take(self) -> list[tuple[VerdictRecord, bytes | None, str]]:
        try:
            items = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(items) < 512:  # group what piled up into one transaction
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _settle(self, n: int) -> None:
        with self._lock:
            self._pending -= n

    def _run(self) -> None:
        next_try = 0.0
        while not (self._stop.is_set() and self._pending <= 0):
            rows: list[dict[str, Any]] = []
            try:
                items = self._take()
                fresh = [self._prepare(*it) for it in items]
                self._settle(sum(1 for r in fresh if not r))  # dead-lettered while preparing
                with self._lock:
                    rows = [*self._unsaved, *(r for r in fresh if r)]
                    self._unsaved.clear()
                    self._inflight = rows
                due = rows or (self.failing_since is None and self.spill.exists()) or \
                    (self.failing_since is not None and time.monotonic() >= next_try)
                if due:
                    held = self._store(rows)
                    self._settle(len(rows) - held)
                    if held or self.failing_since is not None:
                        next_try = time.monotonic() + RETRY_S
                    else:
                        self._replay()
            except Exception as exc:  # the writer must outlive anything: count it, keep the rows, go on
                self.counts["write_errors"] += 1
                log.exception("verdict log writer error (it keeps running): %s", exc)
                with self._lock:
                    self._unsaved.extend(rows)  # a row stored twice is ignored (unique request id)
                self._close_db()
                time.sleep(0.1)
            finally:
                self._inflight = []
            if self.failing_since is not None and not self._queue.qsize():
                time.sleep(0.05)  # nothing new: do not spin on a broken database
        self._close_db()

    def _db(self) -> Any:
        if self._conn is None:
            self._conn = self.db.connect()
        return self._conn

    def _close_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as exc:  # a connection the server dropped may fail to close: it is gone either way
                log.debug("closing the verdict database connection: %s", exc)
            self._conn = None

    def _prepare(self, rec: VerdictRecord, image: bytes | None, fmt: str) -> dict[str, Any]:
        path = None
        if image is not None:
            self.pending_image_bytes -= len(image)
            path = self._save_image(rec, image, fmt)
        return self._row(rec, path)

    def _save_image(self, rec: VerdictRecord, image: bytes, fmt: str) -> str | None:
        assert self.images_dir is not None
        day = datetime.fromtimestamp(rec.ts, timezone.utc).strftime("%Y-%m-%d")
        path = self.images_dir / rec.verdict / day / f"{rec.request_id}.{_EXT.get(fmt, 'bin')}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, image)
        except OSError as exc:  # a full disk must not cost the verdict row
            self.counts["images_not_kept"] += 1
            now = time.monotonic()
            if now - self._image_error_logged > 10:  # one line per 10 s, not one per part at line rate
                self._image_error_logged = now
                log.error("could not keep image %s (%s); %d images not kept so far", path, exc,
                          self.counts["images_not_kept"])
            return None
        return str(path)

    def _store(self, rows: list[dict[str, Any]]) -> int:
        """Insert ``rows`` (or, after a failure, probe the database); on a database error spill them.
        Returns how many rows are still held in memory (neither stored nor spilled)."""
        try:
            if rows:
                insert(self.db, self._db(), rows)
            elif self.failing_since is not None:
                self.db.probe(self._db())  # nothing to write: is the database back?
        except self._db_errors as exc:
            self._close_db()
            self._failing(exc)
            if not rows:
                return 0
            try:
                self.spill.append(rows)
                self.counts["spilled"] += len(rows)
                return 0
            except OSError as err:  # the spill disk refuses too: hold them (bounded by max_backlog)
                log.error("spill file %s refuses writes too (%s); %d verdicts held in memory", self.spill.path,
                          err, len(rows))
                with self._lock:
                    self._unsaved.extend(rows)
                return len(rows)
        except Exception:  # a row the database refuses (a type it cannot bind): find it, keep the rest
            for row in rows:
                try:
                    insert(self.db, self._db(), [row])
                except self._db_errors:
                    raise
                except Exception as exc:
                    self._dead(row, exc)
        self.counts["written"] += len(rows)
        self._recovered()
        return 0

    def _replay(self) -> None:
        taken = self.spill.take()
        if taken is None:
            return
        rows = taken.read()
        try:
            for start in range(0, len(rows), 512):
                insert(self.db, self._db(), [{c: r.get(c) for c in COLUMNS} for r in rows[start : start + 512]])
        except self._db_errors as exc:  # the taken file stays for the next attempt
            self._close_db()
            self._failing(exc)
            return
        taken.remove()
        self.counts["replayed"] += len(rows)
        log.info("replayed %d spilled verdicts into %s", len(rows), self.path)

    def _failing(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.error("the verdict database %s refuses writes (%s): spilling to %s and retrying", self.path, exc,
                      self.spill.path)
        self.last_error = f"{exc.__class__.__name__}: {exc}"

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.warning("the verdict database %s takes writes again after %.0f s", self.path,
                        time.monotonic() - self.failing_since)
        self.failing_since = None
        self.last_error = None
        self.last_progress = time.monotonic()

    # -- queries: the store's, for the routes ----------------------------------------------------
    def query(self, **filters: Any) -> list[dict[str, Any]]:
        return self.queries.query(**filters)

    def get(self, verdict_id: int) -> dict[str, Any] | None:
        return self.queries.get(verdict_id)

    def count(self) -> int:
        return self.queries.count()

    def stations(self, limit: int) -> list[str]:
        return self.queries.stations(limit)
