"""What `facility users add|list|passwd` do (the CLI in runtime/ parses them), and the demo
users of `facility up`. What the commands need is imported when they run."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DB_URL = "sqlite:///var/facility.sqlite3"
DEMO_TEAM = "lift-contractor"
DEMO_STEWARD_BUILDINGS = ("b03", "b05")


def _user_store(db_url: str) -> Any:
    from api.auth.passwords import Passwords
    from api.auth.users import UserStore
    from db.engine import make_engine
    from db.migrate import migrate

    engine = make_engine(db_url)
    migrate(engine)
    return UserStore(engine, Passwords())


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        from facility.errors import SettingsError

        raise SettingsError("--password-stdin", "no terminal to ask for the password: pipe it in")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        from api.errors import UserError

        raise UserError("the passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from facility.site import load_site

    known = None
    if args.site is not None and Path(args.site).exists():
        known = list(load_site(args.site).building_by_id)
    users = _user_store(args.db_url)
    try:
        user = users.add(
            args.username,
            _read_password(args),
            args.role,
            display_name=args.display_name,
            team=args.team,
            buildings=args.building,
            known_buildings=known,
        )
    finally:
        users.engine.dispose()
    extra = f", team {user.team}" if user.team else ""
    if user.buildings:
        extra += f", buildings {', '.join(sorted(user.buildings))}"
    print(f"user {user.username!r} added: {user.role}{extra}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    users = _user_store(args.db_url)
    try:
        for u in users.list():
            flags = " (disabled)" if u.disabled else ""
            where = u.team or ", ".join(sorted(u.buildings)) or "-"
            print(f"{u.username:<20} {u.role:<11} {where}{flags}")
    finally:
        users.engine.dispose()
    return 0


def cmd_users_passwd(args: argparse.Namespace) -> int:
    users = _user_store(args.db_url)
    try:
        users.set_password(args.username, _read_password(args))
    finally:
        users.engine.dispose()
    print(f"password of {args.username!r} set (and the account unlocked)")
    return 0


# -- the demo ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: str
    note: str


def ensure_demo_users(engine: Any, site: Any, password: str | None = None) -> list[DemoLogin]:
    """One user per role for the demo, made or reset to `password` (random if None)."""
    from api.auth.passwords import Passwords
    from api.auth.users import UserStore

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
