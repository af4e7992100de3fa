"""Is a token's session still on? One small read per request, shared by every process.

A token is refused once its user is gone or disabled, once the user's token version moved past
the token's (password, role, buildings changed; logged out everywhere), or once its session
was logged out. All three live in the database, and they are read on every request — one
primary-key lookup of `users` with an `EXISTS` on `revoked_sessions`'s primary key — so a
change made by another API replica or by the `facility users` command is seen by the very next
request, with no cache to invalidate across processes. The user's full record (role, team,
buildings: a join) is cached in memory keyed by its version, so it is re-read only after a
change (or `ttl_ms`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine, delete, exists, select

from api.auth.tokens import Claims
from api.auth.users import User, UserStore
from api.errors import AuthenticationError
from db.engine import begin_write, upsert_for
from db.schema import revoked_sessions, users
from facility.clock import Clock

MAX_CACHED_USERS = 10_000


@dataclass(frozen=True, slots=True)
class SessionState:
    version: int
    disabled: bool
    revoked: bool


class Sessions:
    def __init__(self, users_: UserStore, *, clock_ms: Clock, ttl_ms: int) -> None:
        self.users = users_
        self.engine: Engine = users_.engine
        self._clock_ms = clock_ms
        self._ttl_ms = ttl_ms
        self._cache: dict[int, tuple[int, User]] = {}
        self._lock = threading.Lock()

    def state(self, user_id: int, session_id: str) -> SessionState | None:
        """The user's version and disabled flag, and whether this session was logged out
        (None: no such user). One indexed read."""
        revoked = exists().where(revoked_sessions.c.session_id == session_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.token_version, users.c.disabled, revoked).where(
                    users.c.id == user_id
                )
            ).first()
        if row is None:
            return None
        return SessionState(int(row[0]), bool(row[1]), bool(row[2]))

    def user(self, claims: Claims) -> User:
        """The user behind a token, if its session is still on; else `AuthenticationError`
        saying why. Blocking (a database read): call it off the event loop where reads go."""
        state = self.state(claims.user_id, claims.session_id)
        if state is None or state.disabled:
            raise AuthenticationError("this user no longer exists or is disabled")
        if state.revoked:
            raise AuthenticationError("this session was logged out: log in again")
        if state.version != claims.version:
            raise AuthenticationError(
                "this session has ended (password, role or buildings changed, or logged out "
                "everywhere): log in again"
            )
        user = self._cached(claims.user_id, state.version)
        if user is None or user.username != claims.username:
            raise AuthenticationError("this user no longer exists or is disabled")
        return user

    def _cached(self, user_id: int, version: int) -> User | None:
        now = self._clock_ms()
        with self._lock:
            hit = self._cache.get(user_id)
        if hit is not None and hit[1].token_version == version and now - hit[0] < self._ttl_ms:
            return hit[1]
        user = self.users.get(user_id)
        if user is None:
            return None
        with self._lock:
            if len(self._cache) >= MAX_CACHED_USERS:
                self._cache.clear()
            self._cache[user_id] = (now, user)
        return user if user.token_version == version else None

    def revoke(self, claims: Claims, session_max_ms: int) -> None:
        """Log this session out: its tokens (this one and any refreshed from the same login)
        are refused until the session would have ended anyway; then the row is pruned."""
        now = self._clock_ms()
        upsert = upsert_for(self.engine)
        with begin_write(self.engine) as conn:
            conn.execute(delete(revoked_sessions).where(revoked_sessions.c.expires_ms <= now))
            conn.execute(
                upsert(revoked_sessions)
                .values(
                    session_id=claims.session_id,
                    user_id=claims.user_id,
                    expires_ms=claims.auth_ms + session_max_ms,
                )
                .on_conflict_do_nothing()
            )
