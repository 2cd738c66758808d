"""The service's database: an SQLite file (the embedded default) or a PostgreSQL server shared by
several instances (``DEFECTSCOPE_DATABASE_URL=postgresql://...``).

The logs (verdicts, alarms, samples) write their SQL once, with ``?`` placeholders and portable
types; this module is the one place that tells the dialects apart: placeholders, column types,
insert-or-ignore, JSON fields, which errors mean "the database is unwell: spill and retry" (as
opposed to "this row is bad"), and the schema migrations. Migrations are additive and declarative
(a table or column a log lacks is added, and the version recorded in ``schema_versions``); on
PostgreSQL they run under an advisory lock, so instances starting together do not race.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from inspection.errors import DefectscopeError


class DatabaseUnavailable(DefectscopeError):
    """The database the service is configured with cannot be reached to set up its tables."""


POSTGRES_URL = re.compile(r"^postgres(ql)?://")
_TYPES_PG = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT", "TEXT": "TEXT"}
# PostgreSQL 15 has no IS JSON: a stored text that is not JSON reads as NULL instead of failing the query
_PG_JSONB = """
CREATE OR REPLACE FUNCTION defectscope_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END $$
"""


@dataclass(frozen=True)
class Table:
    """A table as the code expects it. ``columns``: (name, "REAL|INTEGER|TEXT" [+ " NOT NULL"]);
    an ``id`` key is implicit. Columns an older log may lack must be nullable: they are added."""

    name: str
    version: int
    columns: tuple[tuple[str, str], ...]
    indexes: tuple[tuple[str, tuple[str, ...], bool], ...] = ()  # (name, columns, unique)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


class Database:
    """What the logs need from a database; ``SqliteDb`` and ``PostgresDb`` are the two."""

    kind = ""
    errors: tuple[type[BaseException], ...] = ()  # the database's state, not the row's: spill and retry

    def connect(self) -> Any:
        raise NotImplementedError

    def migrate(self, *tables: Table) -> None:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders in this dialect."""
        return text

    def insert_ignoring(self, table: Table, unique: str) -> str:
        raise NotImplementedError

    def json_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]]:
        """A condition: the JSON object in ``column`` has ``key`` equal to ``value`` (no row can break it)."""
        raise NotImplementedError

    def write(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` in one transaction."""
        raise NotImplementedError

    def select(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """On a short connection of its own, so a reader never waits for the writer's."""
        with self._reader() as conn:
            cur = conn.execute(self.sql(sql), tuple(args))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def probe(self, conn: Any) -> None:
        """Raises one of ``errors`` while the database cannot take writes."""
        raise NotImplementedError

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def where(self) -> str:
        """For messages: the file, or the server without its password."""
        raise NotImplementedError

    def spill_name(self) -> str:
        """A file name for what this database could not take yet."""
        raise NotImplementedError

    def locator(self) -> str:
        """What ``database()`` opens this one from (a server's URL holds its password: not for logs)."""
        raise NotImplementedError


class SqliteDb(Database):
    kind = "sqlite"
    errors = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)

    def __init__(self, path: Path | str, timeout_s: float = 1.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
        except BaseException:
            # a connection left open keeps SQLite's shared-memory index alive, and a broken one (disk
            # full while it grew) is only rebuilt when the last connection has closed
            conn.close()
            raise
        return conn

    def migrate(self, *tables: Table) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        try:
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER)")
                for t in tables:
                    cols = ", ".join(f"{c} {kind}" for c, kind in t.columns)
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {t.name} (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
                    have = {r[1] for r in conn.execute(f"PRAGMA table_info({t.name})")}
                    for c, kind in t.columns:
                        if c not in have:
                            conn.execute(f"ALTER TABLE {t.name} ADD COLUMN {c} {kind}")
                    for name, on, unique in t.indexes:
                        conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} "
                                     f"ON {t.name} ({','.join(on)})")
                    conn.execute("INSERT OR REPLACE INTO schema_versions VALUES (?, ?)", (t.name, t.version))
        finally:
            conn.close()

    def insert_ignoring(self, table: Table, unique: str) -> str:
        marks = ",".join("?" * len(table.names))
        return f"INSERT OR IGNORE INTO {table.name} ({','.join(table.names)}) VALUES ({marks})"

    def json_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]]:
        return f"CASE WHEN json_valid({column}) THEN json_extract({column}, ?) END = ?", [f'$."{key}"', value]

    def write(self, conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn:
            conn.executemany(sql, rows)

    def probe(self, conn: sqlite3.Connection) -> None:
        with conn:  # a write, so a full disk or a lock shows
            conn.execute("CREATE TABLE IF NOT EXISTS _probe (x)")
            conn.execute("DROP TABLE _probe")

    def where(self) -> str:
        return str(self.path)

    def spill_name(self) -> str:
        return self.path.name

    def locator(self) -> str:
        return str(self.path)


class PostgresDb(Database):
    kind = "postgresql"

    def __init__(self, url: str, statement_timeout_s: float = 10.0) -> None:
        import psycopg  # optional until a URL asks for it

        self._psycopg = psycopg
        self.url = url
        self.statement_timeout_s = statement_timeout_s
        # the server's state (down, restarting, full, unreachable), not the row's
        self.errors = (psycopg.OperationalError, psycopg.InterfaceError, OSError)

    def connect(self) -> Any:
        # short timeouts: a verdict is spilled and retried, never held up by a hung server
        return self._psycopg.connect(self.url, connect_timeout=3,
                                     options=f"-c statement_timeout={int(self.statement_timeout_s * 1000)}")

    def migrate(self, *tables: Table) -> None:
        try:
            conn = self.connect()
        except self._psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot reach the PostgreSQL server at {self.where()}: {exc}".strip()) from None
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('defectscope-schema'))")
                conn.execute(_PG_JSONB)
                conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER)")
                for t in tables:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {t.name} "
                                 f"(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
                    for c, kind in t.columns:
                        conn.execute(f"ALTER TABLE {t.name} ADD COLUMN IF NOT EXISTS {c} {self._type(kind)}")
                    for name, on, unique in t.indexes:
                        conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} "
                                     f"ON {t.name} ({','.join(on)})")
                    conn.execute("INSERT INTO schema_versions VALUES (%s, %s) ON CONFLICT (name) "
                                 "DO UPDATE SET version = EXCLUDED.version", (t.name, t.version))
        finally:
            conn.close()

    @staticmethod
    def _type(kind: str) -> str:
        base, _, rest = kind.partition(" ")
        return f"{_TYPES_PG[base]} {rest}".strip()

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")  # our statements hold no literal '?' or '%'

    def insert_ignoring(self, table: Table, unique: str) -> str:
        return (f"INSERT INTO {table.name} ({','.join(table.names)}) VALUES ({','.join(['%s'] * len(table.names))}) "
                f"ON CONFLICT ({unique}) DO NOTHING")

    def json_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]]:
        return f"defectscope_jsonb({column}) -> ? = ?::jsonb", [key, json.dumps(value)]

    def write(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, rows)

    def probe(self, conn: Any) -> None:
        conn.execute("SELECT 1")
        conn.rollback()

    def where(self) -> str:
        u = urlsplit(self.url)
        return f"postgresql://{u.hostname or ''}{f':{u.port}' if u.port else ''}{u.path}"

    def spill_name(self) -> str:
        u = urlsplit(self.url)
        return re.sub(r"[^A-Za-z0-9_-]+", "-", f"postgresql-{u.hostname or 'local'}-{u.port or 5432}{u.path}")

    def locator(self) -> str:
        return self.url


def database(where: Database | Path | str, *, timeout_s: float = 1.0) -> Database:
    """A database from a PostgreSQL URL, an SQLite path, or itself."""
    if isinstance(where, Database):
        return where
    if isinstance(where, str) and POSTGRES_URL.match(where):
        return PostgresDb(where)
    return SqliteDb(where, timeout_s=timeout_s)
