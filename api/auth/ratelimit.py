"""Sliding-window rate limits per key (a client address, a unit), in the shared database.

Every API process behind a load balancer counts into the same rows, so a client gets the
limit once, not once per replica. A hit is one write transaction: count the key's hits in the
window, refuse or record one more. Two processes hitting one key at once are serialised on
that key — SQLite by its write lock (`begin_write`), PostgreSQL by a transaction-level
advisory lock on (scope, key) — so the count they see always includes the other's hit, and
`limit` hits are allowed, never `limit + 1`. Refused hits are not recorded (as before: a
client that keeps knocking waits for its oldest allowed hit to leave the window, not longer).

Old hits are deleted by one process at a time (a non-blocking advisory lock on PostgreSQL),
at most once per window per process, so the table holds at most `limit` rows per active key.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, text

from db.engine import begin_write
from db.schema import rate_limit_hits
from facility.clock import Clock

MAX_KEY_CHARS: Final = 128
_LOCK_SPACE: Final = 0x46_52_4C  # PostgreSQL advisory locks (space, hash of scope:key)
_PRUNE_LOCK: Final = (_LOCK_SPACE, 0)


class SqlRateLimiter:
    """At most `limit` hits per key within any `window_s`, counted in the database."""

    def __init__(
        self, engine: Engine, *, scope: str, limit: int, window_s: float, clock_ms: Clock
    ) -> None:
        self.engine = engine
        self.scope = scope
        self.limit = limit
        self.window_ms = int(window_s * 1000)
        self._clock_ms = clock_ms
        self._postgres = engine.dialect.name == "postgresql"
        self._next_prune_ms = 0

    def hit(self, key: str) -> float | None:
        """Count a hit; None if allowed, else seconds until the next one would be."""
        now = self._clock_ms()
        key = key[:MAX_KEY_CHARS]
        c = rate_limit_hits.c
        mine = and_(c.scope == self.scope, c.key == key, c.at_ms > now - self.window_ms)
        with begin_write(self.engine) as conn:
            if self._postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                    {"space": _LOCK_SPACE, "key": f"{self.scope}:{key}"},
                )
            hits, oldest = conn.execute(select(func.count(), func.min(c.at_ms)).where(mine)).one()
            if hits >= self.limit:
                return max(0.0, (int(oldest) + self.window_ms - now) / 1000)
            conn.execute(insert(rate_limit_hits).values(scope=self.scope, key=key, at_ms=now))
        if now >= self._next_prune_ms:
            self._next_prune_ms = now + self.window_ms
            self.prune(now)
        return None

    def prune(self, now_ms: int) -> int:
        """Delete this limit's hits that left the window; how many (0 while another prunes)."""
        c = rate_limit_hits.c
        with begin_write(self.engine) as conn:
            if self._postgres and not _try_lock(conn):
                return 0
            result = conn.execute(
                delete(rate_limit_hits).where(
                    c.scope == self.scope, c.at_ms <= now_ms - self.window_ms
                )
            )
        return int(result.rowcount)

    def forget(self, key: str) -> None:
        """Drop a key's hits (an operator's reset; tests)."""
        c = rate_limit_hits.c
        with begin_write(self.engine) as conn:
            conn.execute(
                delete(rate_limit_hits).where(c.scope == self.scope, c.key == key[:MAX_KEY_CHARS])
            )


def _try_lock(conn: Connection) -> bool:
    """The pruning lock for this transaction, if nobody holds it."""
    got = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:space, :id)"),
        {"space": _PRUNE_LOCK[0], "id": _PRUNE_LOCK[1]},
    ).scalar_one()
    return bool(got)
