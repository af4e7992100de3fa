"""The `facility users` commands: people who log in, managed from the shell (the same rules
as the admin routes of the API: changes that alter what a user may do end their sessions, and
none may leave the site without an enabled admin)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Iterator

from api.auth.users import UserStore
from api.errors import UserError
from api.users_cli import open_user_store
from facility.errors import SettingsError
from facility.portfolio import load_sites
from runtime.settings.resolve import Resolved
from runtime.settings.tree import DatabaseSettings, SiteSettings


@contextlib.contextmanager
def _users(settings: Resolved) -> Iterator[UserStore]:
    users = open_user_store(settings.get(DatabaseSettings).url)
    try:
        yield users
    finally:
        users.engine.dispose()


def _known_buildings(settings: Resolved) -> list[str] | None:
    """The site's buildings, to check names against (None: no site file to check with)."""
    site_file = settings.get(SiteSettings).file
    return list(load_sites(site_file).building_by_id) if site_file.exists() else None


def _known_sites(settings: Resolved) -> list[str] | None:
    """The deployment's sites (a portfolio's estates), to check names against."""
    site_file = settings.get(SiteSettings).file
    return [s.id for s in load_sites(site_file).sites] if site_file.exists() else None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise SettingsError("--password-stdin", "no terminal to ask for the password: pipe it in")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace, settings: Resolved) -> int:
    known = _known_buildings(settings)
    with _users(settings) as users:
        user = users.add(
            args.username,
            _read_password(args.password_stdin),
            args.role,
            display_name=args.display_name,
            team=args.team,
            buildings=args.building,
            known_buildings=known,
            sites=args.sites,
            known_sites=_known_sites(settings),
        )
    extra = f", team {user.team}" if user.team else ""
    if user.buildings:
        extra += f", buildings {', '.join(sorted(user.buildings))}"
    if user.sites:
        extra += f", sites {', '.join(sorted(user.sites))}"
    print(f"user {user.username!r} added: {user.role}{extra}")
    return 0


def cmd_users_list(_args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        held = users.backoff.held_back(users.clock_ms())
        for u in users.list():
            flags = " (disabled)" if u.disabled else ""
            if u.username in held:
                flags += f" (failed logins: {held[u.username][0]} client(s) waiting)"
            where = u.team or ", ".join(sorted(u.buildings)) or "-"
            if u.sites:
                where += f" (sites {', '.join(sorted(u.sites))})"
            print(f"{u.username:<20} {u.role:<11} {where}{flags}")
    return 0


def cmd_users_passwd(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        users.set_password(args.username, _read_password(args.password_stdin))
    print(f"password of {args.username!r} set; their sessions ended, failed logins forgotten")
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        users.set_disabled(args.username, True)
    print(f"user {args.username!r} disabled; their sessions ended")
    return 0


def cmd_users_enable(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        users.set_disabled(args.username, False)
    print(f"user {args.username!r} enabled")
    return 0


def cmd_users_delete(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        users.delete(args.username)
    print(f"user {args.username!r} deleted")
    return 0


def cmd_users_set_buildings(args: argparse.Namespace, settings: Resolved) -> int:
    known = _known_buildings(settings)
    with _users(settings) as users:
        user = users.set_buildings(args.username, args.building, known)
    print(
        f"user {user.username!r} sees buildings {', '.join(sorted(user.buildings))}; "
        "their sessions ended"
    )
    return 0


def cmd_users_set_role(args: argparse.Namespace, settings: Resolved) -> int:
    known = _known_buildings(settings)
    with _users(settings) as users:
        user = users.set_role(
            args.username, args.role, team=args.team, buildings=args.building or None, known=known,
            sites=args.sites, known_sites=_known_sites(settings),
        )  # fmt: skip
    print(f"user {user.username!r} is now a {user.role}; their sessions ended")
    return 0


def cmd_users_set_sites(args: argparse.Namespace, settings: Resolved) -> int:
    known = _known_sites(settings)
    with _users(settings) as users:
        user = users.set_sites(args.username, args.sites, known)
    seen = ", ".join(sorted(user.sites)) or "no limit by site"
    print(f"user {user.username!r} sites: {seen}; their sessions ended")
    return 0


def cmd_users_unlock(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        cleared = users.unlock(args.username)
    print(f"user {args.username!r} unlocked: failed logins from {cleared} client(s) forgotten")
    return 0


def cmd_users_logout(args: argparse.Namespace, settings: Resolved) -> int:
    with _users(settings) as users:
        users.end_sessions(args.username)
    print(f"every session of {args.username!r} ended")
    return 0
