"""`facility users add|list|passwd|unlock`, and the demo users of `facility up`.

`register(commands)` adds the `users` command to the `facility` parser; what the commands
need is imported when they run.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DB_URL = "sqlite:///var/facility.sqlite3"
DEMO_TEAM = "lift-contractor"
DEMO_STEWARD_BUILDINGS = ("b03", "b05")


def _env(option: str, default: Any) -> Any:
    return os.environ.get("FACILITY_" + option.upper().replace("-", "_"), default)


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


def register(commands: Any) -> None:
    """Add `facility users ...` to the CLI's subcommands."""
    users = commands.add_parser("users", help="people who log in to the API and dashboard")
    sub = users.add_subparsers(dest="users_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--db-url", default=_env("db-url", DEFAULT_DB_URL), help="work-order database URL"
        )

    add = sub.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument(
        "--role", required=True, choices=("admin", "dispatcher", "technician", "steward")
    )
    add.add_argument("--team", default=None, help="a technician's team (e.g. lift-contractor)")
    add.add_argument(
        "--building",
        action="append",
        default=[],
        help="a building a steward looks after (repeatable)",
    )
    add.add_argument("--display-name", default=None)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--site",
        type=Path,
        default=_env("site", "sites/shangri-la.toml"),
        help="check --building against this site file (when it exists)",
    )
    common(add)
    add.set_defaults(func=cmd_users_add)

    listing = sub.add_parser("list", help="list the users")
    common(listing)
    listing.set_defaults(func=cmd_users_list)

    passwd = sub.add_parser("passwd", help="set a user's password (also unlocks the account)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    common(passwd)
    passwd.set_defaults(func=cmd_users_passwd)


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
