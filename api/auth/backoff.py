"""Login back-off per (account, client address), in the work-order database.

Locking an account after N failures lets anyone lock the real owner out by guessing wrong on
purpose. Here failures are counted per account *and* client: after `free_failures` of them a
client must wait before its next try on that account — `base_ms`, doubling with each further
failure up to `max_ms` — while the same account from any other address logs in as usual.
Unknown usernames are counted exactly like real ones (the rows are keyed by the name tried),
so the answers never tell which names exist. Rows live in the database, so the back-off holds
across restarts and API replicas; a client's rows are forgotten `reset_ms` after its last
failure, a success forgets them at once, and an admin's unlock forgets an account's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from api.errors import LoginBackoffError
from db.engine import begin_write, upsert_for
from db.schema import login_failures

MAX_CLIENT_CHARS = 128


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    free_failures: int = 5
    """Failures one client may make on one account before it has to wait."""
    base_ms: int = 1_000
    """The first wait; each further failure doubles it ..."""
    max_ms: int = 300_000
    """... up to this."""
    reset_ms: int = 3_600_000
    """A client's failures are forgotten this long after its last one."""

    def delay_ms(self, failures: int) -> int:
        """How long a client with `failures` failures in a row waits before its next try."""
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, 32)
        return int(min(self.base_ms * 2**doublings, self.max_ms))


class LoginBackoff:
    def __init__(self, engine: Engine, policy: BackoffPolicy) -> None:
        self.engine = engine
        self.policy = policy

    def check(self, username: str, client: str, now: int) -> None:
        """`LoginBackoffError` if this client must still wait before trying this account.

        A try whose failure would make the client wait first claims that wait (one
        conditional update), so tries sent at the same moment — to one API process or several
        — wait too instead of guessing alongside it: the back-off starts at the same count
        however the tries are spread. A success lifts the claim (`succeeded`)."""
        c = login_failures.c
        mine = (c.username == username) & (c.client == _client(client))
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.failures, c.blocked_until_ms).where(
                    mine, c.last_failure_ms > now - self.policy.reset_ms
                )
            ).first()
        if row is None:
            return
        if row.blocked_until_ms is not None and now < row.blocked_until_ms:
            raise LoginBackoffError((row.blocked_until_ms - now) / 1000)
        hold = self.policy.delay_ms(row.failures + 1)
        if not hold:
            return  # this try's failure would not make anyone wait
        with begin_write(self.engine) as conn:
            claimed = conn.execute(
                update(login_failures)
                .where(mine, or_(c.blocked_until_ms.is_(None), c.blocked_until_ms <= now))
                .values(blocked_until_ms=now + hold)
            ).rowcount
        if claimed != 1:  # another try got there first
            raise LoginBackoffError(hold / 1000)

    def failed(self, username: str, client: str, now: int) -> int:
        """Count a failure; the wait (ms) it puts on this client's next try (0: none)."""
        key = {"username": username, "client": _client(client)}
        upsert = upsert_for(self.engine)
        with begin_write(self.engine) as conn:
            # Forget what is old first (cheap: indexed), so a stale count starts over.
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.last_failure_ms <= now - self.policy.reset_ms
                )
            )
            statement = upsert(login_failures).values(**key, failures=1, last_failure_ms=now)
            failures = conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[login_failures.c.username, login_failures.c.client],
                    set_={
                        "failures": login_failures.c.failures + 1,
                        "last_failure_ms": now,
                    },
                ).returning(login_failures.c.failures)
            ).scalar_one()
            wait = self.policy.delay_ms(failures)
            if wait:
                conn.execute(
                    update(login_failures)
                    .where(
                        login_failures.c.username == key["username"],
                        login_failures.c.client == key["client"],
                    )
                    .values(blocked_until_ms=now + wait)
                )
        return wait

    def succeeded(self, username: str, client: str) -> None:
        with begin_write(self.engine) as conn:
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.username == username,
                    login_failures.c.client == _client(client),
                )
            )

    def clear(self, username: str) -> int:
        """An admin's unlock: forget every client's failures on this account; how many."""
        with begin_write(self.engine) as conn:
            return int(
                conn.execute(
                    delete(login_failures).where(login_failures.c.username == username)
                ).rowcount
            )

    def held_back(self, now: int) -> dict[str, tuple[int, int]]:
        """Accounts some client must wait for now: username -> (clients, until ms)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    login_failures.c.username,
                    func.count(),
                    func.max(login_failures.c.blocked_until_ms),
                )
                .where(
                    and_(
                        login_failures.c.blocked_until_ms > now,
                        login_failures.c.last_failure_ms > now - self.policy.reset_ms,
                    )
                )
                .group_by(login_failures.c.username)
            ).all()
        return {name: (int(n), int(until)) for name, n, until in rows}


def _client(client: str) -> str:
    return client[:MAX_CLIENT_CHARS]
