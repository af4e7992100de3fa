"""Users of the API in the work-order database (tables `users`, `user_buildings`,
`user_sites`).

Every change that should end a user's sessions — password, role, team, buildings, sites, disabled,
"log out everywhere" — bumps the user's `token_version` in the same transaction; tokens carry
the version they were issued under and the API compares it with the database on every
request. Failed logins slow down per (account, client) (`api.auth.backoff`); the password is
checked outside any transaction (Argon2 takes tens of ms).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, delete, false, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.auth.backoff import BackoffPolicy, LoginBackoff
from api.auth.passwords import Passwords
from api.errors import LoginFailedError, UserError, UserNotFoundError
from db.engine import begin_write
from db.schema import login_failures, revoked_sessions, user_buildings, user_sites, users
from facility.clock import Clock, now_ms

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256
LOCAL_CLIENT = "local"
"""The client of logins that come from no network address (tests, tools)."""


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
    token_version: int
    """Tokens issued under an older version are refused."""
    sites: frozenset[str] = frozenset()
    """Whole sites of a portfolio: a steward sees every building of them too; a dispatcher or
    technician with any sees only them (a regional desk). Empty: no limit by site."""


SITE_ROLES = frozenset({Role.STEWARD, Role.DISPATCHER, Role.TECHNICIAN})
"""The roles a user may be limited to sites in (an admin manages everything)."""


def check_new_user(
    username: str,
    password: str,
    role: str,
    team: str | None,
    buildings: Collection[str],
    known_buildings: Collection[str] | None,
    sites: Collection[str] = (),
    known_sites: Collection[str] | None = None,
) -> Role:
    """The role, if a user like this may be made; else `UserError` saying what is wrong."""
    if not USERNAME.match(username):
        raise UserError(
            f"username {username!r}: use 3-64 of a-z, 0-9, '.', '_', '-' "
            "(starting with a letter or digit)"
        )
    check_password(password)
    return check_role(role, team, buildings, known_buildings, sites, known_sites)


def check_role(
    role: str,
    team: str | None,
    buildings: Collection[str],
    known: Collection[str] | None,
    sites: Collection[str] = (),
    known_sites: Collection[str] | None = None,
) -> Role:
    """The role, if it goes with this team, these buildings and sites; else `UserError`."""
    try:
        checked = Role(role)
    except ValueError:
        raise UserError(
            f"role {role!r}: must be one of {', '.join(r.value for r in Role)}"
        ) from None
    if checked is Role.TECHNICIAN and not (team and team.strip()):
        raise UserError("a technician needs a team")
    if checked is Role.STEWARD and not (buildings or sites):
        raise UserError("a steward needs at least one building or site")
    if checked is not Role.STEWARD and buildings:
        raise UserError("only stewards are assigned buildings (the other roles see them all)")
    if known is not None:
        unknown = sorted(set(buildings) - set(known))
        if unknown:
            raise UserError(f"no building(s) {', '.join(map(repr, unknown))} in the site")
    if sites and checked not in SITE_ROLES:
        raise UserError(
            f"{checked}s see every site: only stewards, dispatchers and technicians are "
            "limited to sites"
        )
    if known_sites is not None:
        unknown = sorted(set(sites) - set(known_sites))
        if unknown:
            raise UserError(
                f"no site(s) {', '.join(map(repr, unknown))} in the deployment "
                f"(its sites: {', '.join(sorted(known_sites))})"
            )
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
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.passwords = passwords
        self.clock_ms = clock_ms
        self.backoff = LoginBackoff(engine, backoff or BackoffPolicy())

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
        sites: Iterable[str] = (),
        known_sites: Collection[str] | None = None,
    ) -> User:
        buildings = sorted(set(buildings))
        chosen_sites = sorted(set(sites))
        checked = check_new_user(
            username, password, role, team, buildings, known_buildings, chosen_sites, known_sites
        )
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
                _set_buildings(conn, user_id, buildings)
                _set_sites(conn, user_id, chosen_sites)
        except IntegrityError as exc:
            raise UserError(f"user {username!r} exists already") from exc
        return self.found(username)

    def set_password(self, username: str, password: str) -> None:
        """A new password: ends the user's sessions and forgets their failed logins."""
        check_password(password)
        password_hash = self.passwords.hash(password)
        with begin_write(self.engine) as conn:
            self._change(conn, username, password_hash=password_hash)
            conn.execute(delete(login_failures).where(login_failures.c.username == username))

    def set_buildings(
        self, username: str, buildings: Iterable[str], known: Collection[str] | None = None
    ) -> User:
        """A steward's buildings (ends their sessions: the next token has the new scope)."""
        chosen = sorted(set(buildings))
        with begin_write(self.engine) as conn:
            row = self._row(conn, username)
            sites = _sites(conn, row.id).get(row.id, frozenset())
            check_role(row.role, row.team, chosen, known, sites)
            self._change(conn, username)
            _set_buildings(conn, row.id, chosen)
        return self.found(username)

    def set_sites(
        self, username: str, sites: Iterable[str], known: Collection[str] | None = None
    ) -> User:
        """The whole sites a user sees (none: no limit by site, or a steward's buildings only);
        ends their sessions like a change of buildings: the next token has the new scope."""
        chosen = sorted(set(sites))
        with begin_write(self.engine) as conn:
            row = self._row(conn, username)
            buildings = _buildings(conn, row.id).get(row.id, frozenset())
            check_role(row.role, row.team, buildings, None, chosen, known)
            self._change(conn, username)
            _set_sites(conn, row.id, chosen)
        return self.found(username)

    def set_role(
        self,
        username: str,
        role: str,
        *,
        team: str | None = None,
        buildings: Iterable[str] | None = None,
        known: Collection[str] | None = None,
        sites: Iterable[str] | None = None,
        known_sites: Collection[str] | None = None,
    ) -> User:
        """A new role; a technician keeps their team, a steward their buildings and a user
        limited to sites those sites (an admin none) unless new ones are given. Refused when
        it would leave no enabled admin."""
        with begin_write(self.engine) as conn:
            row = self._row(conn, username)
            current = _buildings(conn, row.id).get(row.id, frozenset())
            if buildings is not None:
                chosen = sorted(set(buildings))
            else:
                chosen = sorted(current) if role == Role.STEWARD else []
            if sites is not None:
                chosen_sites = sorted(set(sites))
            else:
                kept = _sites(conn, row.id).get(row.id, frozenset())
                chosen_sites = sorted(kept) if role in SITE_ROLES else []
            new_team = team if team is not None else (row.team if role == Role.TECHNICIAN else None)
            checked = check_role(role, new_team, chosen, known, chosen_sites, known_sites)
            if checked is not Role.ADMIN:
                _keep_an_admin(conn, row, f"making {username!r} a {checked}")
            self._change(conn, username, role=str(checked), team=new_team or None)
            _set_buildings(conn, row.id, chosen)
            _set_sites(conn, row.id, chosen_sites)
        return self.found(username)

    def set_disabled(self, username: str, disabled: bool) -> User:
        with begin_write(self.engine) as conn:
            row = self._row(conn, username)
            if disabled:
                _keep_an_admin(conn, row, f"disabling {username!r}")
            self._change(conn, username, disabled=disabled)
        return self.found(username)

    def delete(self, username: str) -> None:
        with begin_write(self.engine) as conn:
            row = self._row(conn, username)
            _keep_an_admin(conn, row, f"deleting {username!r}")
            conn.execute(delete(user_buildings).where(user_buildings.c.user_id == row.id))
            conn.execute(delete(user_sites).where(user_sites.c.user_id == row.id))
            conn.execute(delete(revoked_sessions).where(revoked_sessions.c.user_id == row.id))
            conn.execute(delete(login_failures).where(login_failures.c.username == username))
            conn.execute(delete(users).where(users.c.id == row.id))

    def end_sessions(self, username: str) -> None:
        """Log out everywhere: every token issued so far is refused from the next request."""
        with begin_write(self.engine) as conn:
            self._change(conn, username)

    def unlock(self, username: str) -> int:
        """Forget the account's failed logins from every client (no password reset needed);
        how many clients were held back or counting."""
        self.found(username)
        return self.backoff.clear(username)

    def _row(self, conn: Connection, username: str) -> Any:
        row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            raise UserNotFoundError(username)
        return row

    def _change(self, conn: Connection, username: str, **values: Any) -> None:
        """Update the user and bump the token version: their sessions end."""
        done = conn.execute(
            update(users)
            .where(users.c.username == username)
            .values(**values, token_version=users.c.token_version + 1, updated_ms=self.clock_ms())
        ).rowcount
        if not done:
            raise UserNotFoundError(username)

    # -- reading ---------------------------------------------------------------------------

    def get(self, user_id: int) -> User | None:
        return self._one(users.c.id == user_id)

    def by_username(self, username: str) -> User | None:
        return self._one(users.c.username == username)

    def found(self, username: str) -> User:
        """The user of that name; `UserNotFoundError` (404) if there is none."""
        user = self.by_username(username)
        if user is None:
            raise UserNotFoundError(username)
        return user

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
            assigned = _buildings(conn, None)
            sites = _sites(conn, None)
        return [
            _user(row, assigned.get(row.id, frozenset()), sites.get(row.id, frozenset()))
            for row in rows
        ]

    def _one(self, where: Any) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(where)).first()
            if row is None:
                return None
            return _user(
                row,
                _buildings(conn, row.id).get(row.id, frozenset()),
                _sites(conn, row.id).get(row.id, frozenset()),
            )

    # -- logging in ------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, client: str = LOCAL_CLIENT) -> User:
        """The user, if the password is right and the account is enabled.

        Raises `LoginFailedError` (the same for an unknown user, a wrong password and a
        disabled account) or `LoginBackoffError` while this client must wait before trying
        this account again. An unknown name costs the same password check (against a dummy
        hash) and backs off the same way, so neither tells which names exist.
        """
        now = self.clock_ms()
        self.backoff.check(username, client, now)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.password_hash, users.c.disabled).where(
                    users.c.username == username
                )
            ).first()
        if row is None:
            self.passwords.waste_time(password)
            self.backoff.failed(username, client, now)
            raise LoginFailedError()
        if not self.passwords.verify(row.password_hash, password) or row.disabled:
            self.backoff.failed(username, client, now)
            raise LoginFailedError()
        self.backoff.succeeded(username, client)
        if self.passwords.needs_rehash(row.password_hash):
            with begin_write(self.engine) as conn:
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=self.passwords.hash(password))
                )
        user = self.get(row.id)
        if user is None:
            raise LoginFailedError()
        return user


def _keep_an_admin(conn: Connection, row: Any, what: str) -> None:
    """Refuse a change that would leave no enabled admin (nobody could manage users)."""
    if row.role != Role.ADMIN or row.disabled:
        return
    # Lock the enabled admins' rows in one order: two admins disabling each other at once
    # on PostgreSQL are serialised here, and the second sees the first's change.
    admins = conn.execute(
        select(users.c.id)
        .where(users.c.role == str(Role.ADMIN), users.c.disabled == false())
        .order_by(users.c.id)
        .with_for_update()
    ).scalars()
    if not [admin for admin in admins if admin != row.id]:
        raise UserError(f"{what} would leave no enabled admin")


def _set_buildings(conn: Connection, user_id: int, buildings: Iterable[str]) -> None:
    conn.execute(delete(user_buildings).where(user_buildings.c.user_id == user_id))
    rows = [{"user_id": user_id, "building_id": b} for b in sorted(set(buildings))]
    if rows:
        conn.execute(insert(user_buildings), rows)


def _buildings(conn: Any, user_id: int | None) -> dict[int, frozenset[str]]:
    query = select(user_buildings.c.user_id, user_buildings.c.building_id)
    if user_id is not None:
        query = query.where(user_buildings.c.user_id == user_id)
    out: dict[int, set[str]] = {}
    for row in conn.execute(query):
        out.setdefault(row.user_id, set()).add(row.building_id)
    return {uid: frozenset(b) for uid, b in out.items()}


def _set_sites(conn: Connection, user_id: int, sites: Iterable[str]) -> None:
    conn.execute(delete(user_sites).where(user_sites.c.user_id == user_id))
    rows = [{"user_id": user_id, "site_id": s} for s in sorted(set(sites))]
    if rows:
        conn.execute(insert(user_sites), rows)


def _sites(conn: Any, user_id: int | None) -> dict[int, frozenset[str]]:
    query = select(user_sites.c.user_id, user_sites.c.site_id)
    if user_id is not None:
        query = query.where(user_sites.c.user_id == user_id)
    out: dict[int, set[str]] = {}
    for row in conn.execute(query):
        out.setdefault(row.user_id, set()).add(row.site_id)
    return {uid: frozenset(s) for uid, s in out.items()}


def _user(row: Any, buildings: frozenset[str], sites: frozenset[str] = frozenset()) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        team=row.team,
        buildings=buildings,
        disabled=bool(row.disabled),
        token_version=int(row.token_version),
        sites=sites,
    )
