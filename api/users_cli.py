"""The user store the `facility users` commands work on, and the demo users of `facility up`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from api.auth.passwords import Passwords
from api.auth.users import UserStore
from db.engine import make_engine
from db.migrate import migrate

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


def ensure_demo_users(engine: Any, site: Any, password: str | None = None) -> list[DemoLogin]:
    """One user per role for the demo, made or reset to `password` (random if None)."""
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
    logins = []
    for username, role, extra, note in plan:
        secret = password or secrets.token_urlsafe(9)
        if store.by_username(username) is None:
            store.add(username, secret, role, display_name=f"Demo {role}", **extra)
        else:
            store.set_password(username, secret)
            if role == "steward":
                store.set_buildings(username, stewarded)
        logins.append(DemoLogin(username, secret, role, note))
    return logins
