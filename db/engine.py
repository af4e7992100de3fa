"""One engine per database URL, and the write transactions every store of it uses.

SQLite (the default) runs in WAL mode, and its write transactions begin IMMEDIATE: they take
the write lock first, so a transaction that reads and then writes waits for another writer
(`busy_timeout`) instead of failing with SQLITE_BUSY halfway. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from db.errors import DatabaseUnavailableError, DatabaseUrlError

WRITE_OPTION: Final = "facility_write"
"""Execution option that makes the next transaction on a SQLite connection BEGIN IMMEDIATE."""
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
"""How long a SQLite writer waits for another's lock before it fails."""
URL_HELP: Final = "use sqlite:///path/to/file.sqlite3 or postgresql://user[:password]@host/name"
_PASSWORD_IN_URL: Final = re.compile(r"(://[^:/@]*:)[^@/]*@")


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, IMMEDIATE write transactions) or PostgreSQL (psycopg 3).

    A URL that names no database we can open is a `DatabaseUrlError` now, not at first use.
    Nothing connects yet: a server that is down shows at the first `connect`.
    """
    parsed = _parse(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:  # a driver we do not ship
        raise DatabaseUrlError(display_url(parsed), f"no driver: {exc}; {URL_HELP}") from exc


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(_hide_password(url), f"not a database URL; {URL_HELP}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            display_url(parsed), f"{parsed.get_backend_name()!r} is not supported; {URL_HELP}"
        )
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    path = url.database
    if path and path != ":memory:" and not url.query.get("uri"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit BEGIN would be DEFERRED and
        # would also break SAVEPOINTs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enter_wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting out others as `busy_timeout` would.

    Two connections opening a new file at once both try the switch; SQLite then fails one of
    them at once with "database is locked" (escalating a shared lock past a pending one would
    deadlock, so the busy handler is not asked), so the switch is retried here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay_s = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.2)


def connect(engine: Engine) -> Connection:
    """A connection, or a `DatabaseUnavailableError` naming the database (password hidden):
    for start-up and commands, where a message beats a driver traceback."""
    try:
        return engine.connect()
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # psycopg's message spans lines
        raise DatabaseUnavailableError(display_url(engine.url), reason) from exc


@contextlib.contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed when the block ends (rolled back on an exception).

    On SQLite it takes the write lock first (BEGIN IMMEDIATE), so reading then writing in one
    transaction cannot deadlock with another writer.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def upsert_for(engine: Engine) -> Callable[..., Any]:
    """The dialect's `insert` (it has `on_conflict_do_nothing` / `_do_update`) for this
    engine's database: both dialects have one, under different names."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def display_url(url: URL) -> str:
    """The URL to show people: the password hidden."""
    return url.render_as_string(hide_password=True)


def _hide_password(url: str) -> str:
    return _PASSWORD_IN_URL.sub(r"\1***@", url)
