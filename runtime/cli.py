"""The `facility` command: parse, resolve the settings tree, dispatch. Nothing else.

Settings come from (lowest to highest) their defaults, a TOML file (`--config`, or
FACILITY_CONFIG), `FACILITY_<SECTION>_<KEY>` variables and flags; `facility config show`
prints what a command would use and why, `facility config reference` the whole tree.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facility.errors import FacilityError
from runtime import commands, qr_commands, report_commands, team_commands, user_commands
from runtime.settings.options import Option, ValueType
from runtime.settings.resolve import Resolved, all_options, read_config_file, resolve
from runtime.settings.show import render_reference
from runtime.settings.tree import COMMAND_SECTIONS, SECTIONS, UP_SKIPS, LogSettings

Command = Callable[[argparse.Namespace, Resolved], int]
_DEST = "setting:"


def _flag_type(value_type: ValueType) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return value_type.from_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_setting_flags(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """One flag per option; absent flags leave no value, so lower sources show through."""
    for option in options:
        default = "generated" if option.secret else option.default
        help_text = f"{option.help} [{option.env}; default {default}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": _DEST + option.name, "default": argparse.SUPPRESS}
        vt = option.value_type
        if vt.base is bool and not vt.many:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif vt.many:
            single = _flag_type(dataclasses.replace(vt, many=False))
            kwargs.update(action="append", type=single, metavar=option.key.upper())
        else:
            kwargs.update(type=_flag_type(vt), metavar=vt.describe().upper().replace(" ", "_"))
        parser.add_argument(f"--{option.flag}", help=help_text, **kwargs)


def _command(
    commands_parser: Any, name: str, func: Command, sections: str | None, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands_parser.add_parser(name, **kwargs)
    if sections is not None:
        skip = UP_SKIPS if sections == "up" else frozenset()
        add_setting_flags(
            parser,
            [o for o in all_options(COMMAND_SECTIONS[sections]) if o.section != "log"
             and o.name not in skip and _flagged(sections, o)],
        )  # fmt: skip
    parser.set_defaults(func=func, sections=sections)
    return parser


MQTT_ADMIN_OPTIONS = frozenset({"gateway.client_id", "gateway.protocol"})
"""`facility mqtt` takes the connection's flags and these, not the gateway's others."""


def _flagged(command: str, option: Option) -> bool:
    return command != "mqtt" or option.section == "mqtt" or option.name in MQTT_ADMIN_OPTIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facility", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS,
        help="settings file (TOML) [FACILITY_CONFIG]",
    )  # fmt: skip
    add_setting_flags(parser, SECTIONS["log"].options)
    top = parser.add_subparsers(dest="command", required=True)

    site = top.add_parser("site", help="site files").add_subparsers(dest="sub", required=True)
    check = _command(
        site, "check", commands.cmd_site_check, None, help="validate a site file or a directory"
    )
    check.add_argument("file", type=Path)

    rules = top.add_parser("rules", help="rule files").add_subparsers(dest="sub", required=True)
    rules_check = _command(rules, "check", commands.cmd_rules_check, None,
                           help="validate a rule file")  # fmt: skip
    rules_check.add_argument("file", type=Path)
    rules_check.add_argument("--site", type=Path, default=None,
                             help="also check the site's parameter overrides")  # fmt: skip
    backtest = _command(rules, "backtest", commands.cmd_rules_backtest, "backtest",
                        help="replay stored history through rules")  # fmt: skip
    backtest.add_argument("--from", dest="start", required=True, help="ISO date/time (UTC)")
    backtest.add_argument("--to", dest="end", required=True, help="ISO date/time (UTC)")
    backtest.add_argument("--rules", type=Path, default=None,
                          help="rule file (default: the built-in pack)")  # fmt: skip

    _command(top, "simulate", commands.cmd_simulate, "simulate",
             help="publish a simulated site's telemetry")  # fmt: skip
    _command(top, "gateway", commands.cmd_gateway, "gateway",
             help="consume telemetry, store it, raise work orders")  # fmt: skip
    _command(top, "api", commands.cmd_api, "api", help="serve the API and dashboard")
    _command(top, "up", commands.cmd_up, "up",
             help="run everything in one process on embedded defaults")  # fmt: skip

    db = top.add_parser("db", help="the work-order database")
    db_commands = db.add_subparsers(dest="sub", required=True)
    upgrade = _command(db_commands, "upgrade", commands.cmd_db_upgrade, "db",
                       help="run the schema migrations (Alembic)")  # fmt: skip
    upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    scope = _command(db_commands, "scope-ids", commands.cmd_db_scope_ids, "db",
                     help="move a single-site database to a portfolio's scoped ids "
                          "(site:id), once, before serving the portfolio")  # fmt: skip
    scope.add_argument("--site", dest="scope_site", required=True, metavar="SITE_ID",
                       help="the site the database's plain ids are of")  # fmt: skip
    scope.add_argument("--sqlite-path", dest="scope_sqlite", type=Path, metavar="FILE",
                       help="also the embedded SQLite telemetry file of that site (it keeps no "
                            "site tag: its readings are found under the scoped ids only once "
                            "rewritten)")  # fmt: skip

    _users_commands(top)
    teams = top.add_parser("teams", help="the teams work orders and technicians belong to")
    team_sub = teams.add_subparsers(dest="sub", required=True)
    _command(team_sub, "list", team_commands.cmd_teams_list, "db", help="list the teams")
    for name, func, what in (
        ("add", team_commands.cmd_teams_add, "add a team"),
        ("remove", team_commands.cmd_teams_remove, "remove a team (orders keep its name)"),
    ):
        _command(team_sub, name, func, "db", help=what).add_argument("name")
    _devices_commands(top)
    qr = _command(top, "qr", qr_commands.cmd_qr, "qr",
                  help="QR codes (SVG) of buildings' report forms and status pages")  # fmt: skip
    qr.add_argument("--building", action="append", required=True, help="a building id; repeat")
    qr.add_argument("--out", type=Path, required=True, help="folder for the SVG files")
    report = _command(top, "report", report_commands.cmd_report, "report",
                      help="the owners' meeting report of a period (PDF and CSV)")  # fmt: skip
    report_commands.add_report_arguments(report)
    mqtt = top.add_parser("mqtt", help="the MQTT broker's sessions")
    _command(
        mqtt.add_subparsers(dest="sub", required=True), "forget-session",
        commands.cmd_mqtt_forget_session, "mqtt",
        help="end a retired client id's persistent session (and its queue) at the broker; "
             "only for ids no process uses",
    )  # fmt: skip

    config = top.add_parser("config", help="the settings tree")
    config_commands = config.add_subparsers(dest="sub", required=True)
    show = config_commands.add_parser(
        "show", help="the effective settings of a command, with where each value came from"
    )
    show.add_argument(
        "for_command",
        nargs="?",
        choices=sorted(COMMAND_SECTIONS),
        default=None,
        help="the command whose settings to show (default: every section)",
    )
    show.set_defaults(func=commands.cmd_config_show, sections=None)
    reference = config_commands.add_parser("reference", help="the settings reference (Markdown)")
    reference.set_defaults(func=_print_reference, sections=None)
    return parser


def _print_reference(_args: argparse.Namespace, _settings: Resolved) -> int:
    print(render_reference())
    return 0


ROLES = ("admin", "dispatcher", "technician", "steward")


def site_list(text: str) -> list[str]:
    """An argparse type: site ids as a,b ('' for none)."""
    return [s.strip() for s in text.split(",") if s.strip()]


def _users_commands(top: Any) -> None:
    users = top.add_parser("users", help="people who log in to the API and dashboard")
    sub = users.add_subparsers(dest="users_command", required=True)
    add = _command(sub, "add", user_commands.cmd_users_add, "users", help="add a user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--team", default=None, help="a technician's team (e.g. lift-contractor)")
    add.add_argument("--building", action="append", default=[],
                     help="a building a steward looks after (repeatable)")  # fmt: skip
    add.add_argument("--sites", type=site_list, default=[],
                     help="whole sites of a portfolio, a,b: a steward sees them, a dispatcher "
                          "or technician is limited to them")  # fmt: skip
    add.add_argument("--display-name", default=None)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input")  # fmt: skip
    _command(sub, "list", user_commands.cmd_users_list, "users", help="list the users")
    passwd = _command(sub, "passwd", user_commands.cmd_users_passwd, "users",
                      help="set a password (ends the sessions, forgets failed logins)")  # fmt: skip
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    for name, func, what in (
        ("disable", user_commands.cmd_users_disable, "refuse a user's logins; end their sessions"),
        ("enable", user_commands.cmd_users_enable, "let a disabled user log in again"),
        ("delete", user_commands.cmd_users_delete, "remove a user (and their sessions)"),
        ("unlock", user_commands.cmd_users_unlock,
         "forget an account's failed logins from every client (no password reset)"),
        ("logout", user_commands.cmd_users_logout, "end every session of a user"),
    ):  # fmt: skip
        _command(sub, name, func, "users", help=what).add_argument("username")
    buildings = _command(sub, "set-buildings", user_commands.cmd_users_set_buildings, "users",
                         help="the buildings a steward sees (ends their sessions)")  # fmt: skip
    buildings.add_argument("username")
    buildings.add_argument("--building", action="append", required=True,
                           help="a building the steward looks after (repeatable)")  # fmt: skip
    role = _command(sub, "set-role", user_commands.cmd_users_set_role, "users",
                    help="change a user's role (ends their sessions)")  # fmt: skip
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    role.add_argument("--team", default=None, help="the team, for a technician")
    role.add_argument("--building", action="append", default=[],
                      help="a building, for a steward (repeatable)")  # fmt: skip
    role.add_argument("--sites", type=site_list, default=None,
                      help="the sites the user is limited to, a,b (default: kept)")  # fmt: skip
    sites = _command(sub, "set-sites", user_commands.cmd_users_set_sites, "users",
                     help="the sites a user sees or is kept to (ends their sessions)")  # fmt: skip
    sites.add_argument("username")
    sites.add_argument("--sites", type=site_list, required=True,
                       help="the sites, a,b ('' for no limit by site)")  # fmt: skip


def _devices_commands(top: Any) -> None:
    devices = top.add_parser("devices", help="device identity on the MQTT broker")
    sub = devices.add_subparsers(dest="devices_command", required=True)
    simulator_help = "also an account that may publish for every device (development brokers only)"
    credentials = _command(
        sub, "credentials", commands.cmd_devices_credentials, "devices",
        help="per-device MQTT passwords, the Mosquitto password file and ACL (kept on re-runs)",
    )  # fmt: skip
    credentials.add_argument("--out", type=Path, required=True, help="directory to write")
    credentials.add_argument("--simulator-account", action="store_true", help=simulator_help)
    rotate = _command(
        sub, "rotate", commands.cmd_devices_rotate, None,
        help="give one account a new secret (the old one ends when the broker reloads)",
    )  # fmt: skip
    rotate.add_argument("username", help="a device id, or facility.gateway")
    rotate.add_argument("--out", type=Path, required=True,
                        help="the directory `devices credentials` wrote")  # fmt: skip
    certs = _command(
        sub, "certs", commands.cmd_devices_certs, "devices",
        help="a test CA, the broker's certificate and a client certificate per device (mTLS)",
    )  # fmt: skip
    certs.add_argument("--out", type=Path, required=True, help="directory to write")
    certs.add_argument("--simulator-account", action="store_true", help=simulator_help)
    certs.add_argument("--days", type=int, default=825, help="validity (default 825 days)")
    certs.add_argument("--server-name", action="append", default=[],
                       help="another DNS name or IP address of the broker (repeatable; "
                            "127.0.0.1 and localhost are always in)")  # fmt: skip
    revoke = _command(
        sub, "revoke", commands.cmd_devices_revoke, None,
        help="revoke one account's client certificate: the broker refuses it once it reloads "
             "the revocation list (crl.pem)",
    )  # fmt: skip
    revoke.add_argument("username", help="a device id, or facility.gateway")
    revoke.add_argument("--out", type=Path, required=True,
                        help="the directory `devices certs` wrote")  # fmt: skip


def load_settings(args: argparse.Namespace, env: dict[str, str]) -> Resolved:
    names: tuple[str, ...]
    if args.sections is None:
        names = ("log",) if args.func is not commands.cmd_config_show else _show_sections(args)
    else:
        names = COMMAND_SECTIONS[args.sections]
    config_path: Path | None = getattr(args, "config", None)
    if config_path is None and env.get("FACILITY_CONFIG"):
        config_path = Path(env["FACILITY_CONFIG"])
    config = read_config_file(config_path) if config_path is not None else None
    flags = {k.removeprefix(_DEST): v for k, v in vars(args).items() if k.startswith(_DEST)}
    flags = {k: tuple(v) if isinstance(v, list) else v for k, v in flags.items()}
    skip = UP_SKIPS if args.sections == "up" else ()
    return resolve(names, config=config, config_path=config_path, env=env, flags=flags, skip=skip)


def _show_sections(args: argparse.Namespace) -> tuple[str, ...]:
    if args.for_command is None:
        return tuple(SECTIONS)
    return COMMAND_SECTIONS[args.for_command]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args, dict(os.environ))
    except FacilityError as exc:
        print(f"facility: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.get(LogSettings).level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The embedded broker logs every connection step, httpx every request.
    for chatty in ("amqtt", "transitions", "httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # `kill -USR1 <pid>` prints every thread's stack: how to see where a stuck process waits.
    with contextlib.suppress(OSError, ValueError):  # stderr is no file (captured, embedded)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    func: Command = args.func
    try:
        return func(args, settings)
    except FacilityError as exc:
        print(f"facility: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
