"""A shard's leader lock: a PostgreSQL session-level advisory lock on a connection of its own.

PostgreSQL releases a session-level advisory lock the moment the session ends — the process
killed, the host rebooted, the backend terminated — so the lock needs no lease or clock of
ours. The connection is tagged with `application_name` (`facility-gateway:<shard>`) so an
operator (or a test) can find it in `pg_stat_activity`, and keeps TCP keepalives short on both
ends, so a vanished peer (a network partition, where no RST comes) is noticed in seconds, not
hours: first by the leader (its check fails, it fences), then by the server (the lock goes).

The key is a stable 64-bit hash of the shard name (BLAKE2b, signed as PostgreSQL's bigint).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from db.engine import make_engine

log = logging.getLogger(__name__)

APPLICATION_PREFIX: Final = "facility-gateway:"
TCP_TIMEOUT_S: Final = 3
"""Keepalive idle time and the user timeout of the lock's connection, and the longest a check
may take: a dead peer or a hung server shows within a few seconds."""
SERVER_KEEPALIVE_S: Final = 3
"""The server's keepalive idle time on the lock's session: with 3 probes a second apart and
a user timeout of twice this, PostgreSQL drops a vanished leader's session (and its lock)
later than the leader's own check fails, so the old leader has stopped acking first."""


HELD: Final = (
    "locktype = 'advisory' AND granted AND classid::bigint = :high AND objid::bigint = :low"
    " AND objsubid = 1"
)
"""pg_locks' row of a held bigint advisory lock (`key_parts` gives :high and :low)."""


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The session holding a shard's lock: its backend pid and the key."""

    pid: int
    key: int

    def params(self) -> dict[str, int]:
        return {"pid": self.pid, **key_parts(self.key)}


HOLDS: Final = "EXISTS (SELECT 1 FROM pg_locks WHERE pid = :pid AND " + HELD + ")"
"""SQL that is true while the session `:pid` holds the lock (`LockHolder.params`): a write
guarded by it is fenced, done only while its writer is still the shard's leader."""


def key_parts(key: int) -> dict[str, int]:
    """pg_locks shows a bigint advisory key as two unsigned 32-bit halves."""
    return {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}


def lock_key(shard: str) -> int:
    """The advisory lock key of a shard: the same on every host and Python version."""
    digest = hashlib.blake2b(shard.encode(), digest_size=8, person=b"facility-shard").digest()
    return int.from_bytes(digest, "big", signed=True)


def application_name(shard: str) -> str:
    return (APPLICATION_PREFIX + shard)[:63]  # PostgreSQL's NAMEDATALEN


def is_postgresql(url: str) -> bool:
    return make_engine(url).dialect.name == "postgresql"


class PostgresLeaderLock:
    """`gateway.leadership.LeaderLock` on PostgreSQL."""

    def __init__(self, url: str, shard: str) -> None:
        base = make_engine(url)
        if base.dialect.name != "postgresql":
            raise ValueError("a leader lock needs PostgreSQL")
        self.shard = shard
        self.key = lock_key(shard)
        self._engine: Engine = create_engine(
            base.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "application_name": application_name(shard),
                "connect_timeout": TCP_TIMEOUT_S,
                "keepalives": 1,
                "keepalives_idle": TCP_TIMEOUT_S,
                "keepalives_interval": 1,
                "keepalives_count": 2,
                "tcp_user_timeout": TCP_TIMEOUT_S * 1000,
                # the server's side of the same: it frees the lock of a vanished leader in
                # seconds (its defaults wait two hours), after that leader has fenced itself
                "options": (
                    f"-c tcp_keepalives_idle={SERVER_KEEPALIVE_S} -c tcp_keepalives_interval=1"
                    f" -c tcp_keepalives_count=3 -c tcp_user_timeout={SERVER_KEEPALIVE_S * 2000}"
                    f" -c statement_timeout={TCP_TIMEOUT_S * 1000}"
                ),
            },
        )
        base.dispose()
        self._conn: Connection | None = None
        self._holder: LockHolder | None = None

    def try_acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            got, pid = self._conn.execute(
                text("SELECT pg_try_advisory_lock(:key), pg_backend_pid()"), {"key": self.key}
            ).one()
        except SQLAlchemyError as exc:
            log.warning("shard %s: leader lock not reachable: %s", self.shard, _short(exc))
            self.release()
            return False
        self._holder = LockHolder(int(pid), self.key) if got else None
        return bool(got)

    def holder(self) -> LockHolder | None:
        """Our lock session as other connections can check it (fenced writes), while held."""
        return self._holder

    def check(self) -> bool:
        """The lock is still ours: our own session holds the advisory lock of the key."""
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND " + HELD),
                key_parts(self.key),
            ).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("shard %s: leader lock connection failed: %s", self.shard, _short(exc))
            return False
        return bool(held)

    def release(self) -> None:
        self._holder = None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.close()  # the session ends: PostgreSQL drops its advisory locks
        except SQLAlchemyError as exc:
            log.debug("closing the leader lock's connection: %s", _short(exc))

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200]
