"""Users of the API in the work-order database (tables `users`, `user_buildings`).

Failed logins are counted in the database, so a lockout holds across restarts and API
replicas; the password is checked outside any transaction (Argon2 takes tens of ms).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.auth.passwords import Passwords
from api.errors import AccountLockedError, LoginFailedError, UserError
from db.engine import begin_write
from db.schema import user_buildings, users
from facility.clock import Clock, now_ms

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    STEWARD = "steward"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    team: str | None
    buildings: frozenset[str]
    """Only meaningful for stewards: the buildings they see."""
    disabled: bool
    locked_until_ms: int | None


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_ms: int = 900_000


def check_new_user(
    username: str,
    password: str,
    role: str,
    team: str | None,
    buildings: Collection[str],
    known_buildings: Collection[str] | None,
) -> Role:
    """The role, if a user like this may be made; else `UserError` saying what is wrong."""
    if not USERNAME.match(username):
        raise UserError(
            f"username {username!r}: use 3-64 of a-z, 0-9, '.', '_', '-' "
            "(starting with a letter or digit)"
        )
    check_password(password)
    try:
        checked = Role(role)
    except ValueError:
        raise UserError(
            f"role {role!r}: must be one of {', '.join(r.value for r in Role)}"
        ) from None
    if checked is Role.TECHNICIAN and not (team and team.strip()):
        raise UserError("a technician needs a team")
    if checked is Role.STEWARD and not buildings:
        raise UserError("a steward needs at least one building")
    if checked is not Role.STEWARD and buildings:
        raise UserError("only stewards are assigned buildings (the other roles see them all)")
    if known_buildings is not None:
        unknown = sorted(set(buildings) - set(known_buildings))
        if unknown:
            raise UserError(f"no building(s) {', '.join(map(repr, unknown))} in the site")
    return checked


def check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise UserError(f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")


class UserStore:
    def __init__(
        self,
        engine: Engine,
        passwords: Passwords,
        *,
        clock_ms: Clock = now_ms,
        policy: LoginPolicy = LoginPolicy(),
    ) -> None:
        self.engine = engine
        self.passwords = passwords
        self.clock_ms = clock_ms
        self.policy = policy
        self._unknown = _UnknownNames(policy)

    # -- administration --------------------------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        display_name: str | None = None,
        team: str | None = None,
        buildings: Iterable[str] = (),
        known_buildings: Collection[str] | None = None,
    ) -> User:
        buildings = sorted(set(buildings))
        checked = check_new_user(username, password, role, team, buildings, known_buildings)
        now = self.clock_ms()
        password_hash = self.passwords.hash(password)
        try:
            with begin_write(self.engine) as conn:
                user_id = conn.execute(
                    insert(users)
                    .values(
                        username=username,
                        display_name=display_name or username,
                        password_hash=password_hash,
                        role=str(checked),
                        team=team or None,
                        created_ms=now,
                        updated_ms=now,
                    )
                    .returning(users.c.id)
                ).scalar_one()
                if buildings:
                    conn.execute(
                        insert(user_buildings),
                        [{"user_id": user_id, "building_id": b} for b in buildings],
                    )
        except IntegrityError as exc:
            raise UserError(f"user {username!r} exists already") from exc
        found = self.get(user_id)
        assert found is not None
        return found

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        password_hash = self.passwords.hash(password)
        with begin_write(self.engine) as conn:
            done = conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(
                    password_hash=password_hash,
                    failed_logins=0,
                    locked_until_ms=None,
                    updated_ms=self.clock_ms(),
                )
            ).rowcount
        if not done:
            raise UserError(f"no user {username!r}")

    def set_buildings(self, username: str, buildings: Iterable[str]) -> None:
        with begin_write(self.engine) as conn:
            user_id = conn.execute(
                select(users.c.id).where(users.c.username == username)
            ).scalar_one_or_none()
            if user_id is None:
                raise UserError(f"no user {username!r}")
            conn.execute(delete(user_buildings).where(user_buildings.c.user_id == user_id))
            rows = [{"user_id": user_id, "building_id": b} for b in sorted(set(buildings))]
            if rows:
                conn.execute(insert(user_buildings), rows)

    def set_disabled(self, username: str, disabled: bool) -> None:
        with begin_write(self.engine) as conn:
            done = conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(disabled=disabled, updated_ms=self.clock_ms())
            ).rowcount
        if not done:
            raise UserError(f"no user {username!r}")

    # -- reading ---------------------------------------------------------------------------

    def get(self, user_id: int) -> User | None:
        return self._one(users.c.id == user_id)

    def by_username(self, username: str) -> User | None:
        return self._one(users.c.username == username)

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
            assigned = _buildings(conn, None)
        return [_user(row, assigned.get(row.id, frozenset())) for row in rows]

    def _one(self, where: Any) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(where)).first()
            if row is None:
                return None
            return _user(row, _buildings(conn, row.id).get(row.id, frozenset()))

    # -- logging in ------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> User:
        """The user, if the password is right and the account is neither locked nor disabled.

        Raises `LoginFailedError` (the same for an unknown user and a wrong password) or
        `AccountLockedError`. `policy.max_failures` failures in a row lock the account for
        `policy.lockout_ms`, during which even the right password is refused.
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    users.c.id,
                    users.c.password_hash,
                    users.c.disabled,
                    users.c.locked_until_ms,
                ).where(users.c.username == username)
            ).first()
        now = self.clock_ms()
        if row is None:
            # An unknown name fails and locks exactly like a known one, or the lockout would
            # tell an attacker which usernames exist.
            self._unknown.check(username, now)
            self.passwords.waste_time(password)
            self._unknown.failed(username, now)
            raise LoginFailedError()
        if row.locked_until_ms is not None and now < row.locked_until_ms:
            raise AccountLockedError((row.locked_until_ms - now) / 1000)
        if not self.passwords.verify(row.password_hash, password) or row.disabled:
            self._failed(row.id, now)
            raise LoginFailedError()
        values: dict[str, Any] = {"failed_logins": 0, "locked_until_ms": None}
        if self.passwords.needs_rehash(row.password_hash):
            values["password_hash"] = self.passwords.hash(password)
        with begin_write(self.engine) as conn:
            conn.execute(update(users).where(users.c.id == row.id).values(**values))
        user = self.get(row.id)
        if user is None:
            raise LoginFailedError()
        return user

    def _failed(self, user_id: int, now: int) -> None:
        with begin_write(self.engine) as conn:
            failures = conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_logins=users.c.failed_logins + 1)
                .returning(users.c.failed_logins)
            ).scalar_one()
            if failures >= self.policy.max_failures:
                conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(failed_logins=0, locked_until_ms=now + self.policy.lockout_ms)
                )


class _UnknownNames:
    """Failed logins to usernames that do not exist, counted and locked like real accounts.

    In memory, per API process, at most `MAX_NAMES` names (the oldest entry goes first): it
    only has to make an unknown name answer like a known one, not to be durable.
    """

    MAX_NAMES: Final = 10_000

    def __init__(self, policy: LoginPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._names: OrderedDict[str, tuple[int, int | None]] = OrderedDict()
        """name -> (failures in a row, locked until ms)"""

    def check(self, username: str, now: int) -> None:
        with self._lock:
            _, locked_until = self._names.get(username, (0, None))
        if locked_until is not None and now < locked_until:
            raise AccountLockedError((locked_until - now) / 1000)

    def failed(self, username: str, now: int) -> None:
        with self._lock:
            failures, _ = self._names.pop(username, (0, None))
            failures += 1
            if failures >= self.policy.max_failures:
                self._names[username] = (0, now + self.policy.lockout_ms)
            else:
                self._names[username] = (failures, None)
            while len(self._names) > self.MAX_NAMES:
                self._names.popitem(last=False)


def _buildings(conn: Any, user_id: int | None) -> dict[int, frozenset[str]]:
    query = select(user_buildings.c.user_id, user_buildings.c.building_id)
    if user_id is not None:
        query = query.where(user_buildings.c.user_id == user_id)
    out: dict[int, set[str]] = {}
    for row in conn.execute(query):
        out.setdefault(row.user_id, set()).add(row.building_id)
    return {uid: frozenset(b) for uid, b in out.items()}


def _user(row: Any, buildings: frozenset[str]) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        team=row.team,
        buildings=buildings,
        disabled=bool(row.disabled),
        locked_until_ms=row.locked_until_ms,
    )
