"""The user store the `facility users` commands work on, and the demo users of `facility up`
(made when missing, never reset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.auth.passwords import Passwords
from api.auth.users import UserStore
from api.errors import UserError
from db.engine import make_engine
from db.migrate import migrate
from facility.secret_text import random_secret

DEFAULT_DB_URL = "sqlite:///var/facility.sqlite3"
DEMO_TEAM = "lift-contractor"
DEMO_STEWARD_BUILDINGS = ("b03", "b05")


def open_user_store(db_url: str) -> UserStore:
    """The users of a (migrated) database, for the `facility users` commands."""
    engine = make_engine(db_url)
    migrate(engine)
    return UserStore(engine, Passwords())


# -- the demo ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: str
    note: str


@dataclass(frozen=True, slots=True)
class DemoUsers:
    created: list[DemoLogin]
    """Accounts made now: their passwords are printed."""
    kept: list[str]
    """Accounts that existed: left exactly as they were (password, role, buildings)."""


def ensure_demo_users(engine: Any, site: Any, password: str | None = None) -> DemoUsers:
    """One user per role for the demo, made only if missing (with `password`, random if None).

    An existing account is never touched: `facility up` on a database whose demo accounts
    were given real passwords (or whose admin is a real person) must not reset them.
    """
    store = UserStore(engine, Passwords())
    stewarded = [b for b in DEMO_STEWARD_BUILDINGS if b in site.building_by_id] or [
        site.buildings[0].id
    ]
    plan: list[tuple[str, str, dict[str, Any], str]] = [
        ("admin", "admin", {}, "everything, users"),
        ("dispatcher", "dispatcher", {}, "all work orders"),
        ("tech", "technician", {"team": DEMO_TEAM}, f"team {DEMO_TEAM}"),
        ("steward", "steward", {"buildings": stewarded}, f"buildings {', '.join(stewarded)}"),
    ]
    created, kept = [], []
    for username, role, extra, note in plan:
        if store.by_username(username) is not None:
            kept.append(username)
            continue
        secret = password or random_secret(9)
        try:
            store.add(username, secret, role, display_name=f"Demo {role}", **extra)
        except UserError:
            kept.append(username)  # made meanwhile by another process: theirs stands
            continue
        created.append(DemoLogin(username, secret, role, note))
    return DemoUsers(created, kept)
