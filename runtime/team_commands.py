"""The `facility teams` commands: the managed list of teams (the same rules as the admin routes
of the API: names of a-z 0-9 . _ -, no duplicates; orders keep a removed team's name)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from alerts.store import WorkOrderStore
from db.engine import make_engine
from runtime.settings.resolve import Resolved
from runtime.settings.tree import DatabaseSettings


@contextlib.contextmanager
def _store(settings: Resolved) -> Iterator[WorkOrderStore]:
    store = WorkOrderStore(make_engine(settings.get(DatabaseSettings).url))
    try:
        store.migrate()
        yield store
    finally:
        store.engine.dispose()


def cmd_teams_list(_args: argparse.Namespace, settings: Resolved) -> int:
    with _store(settings) as store:
        for name in store.list_teams():
            print(name)
    return 0


def cmd_teams_add(args: argparse.Namespace, settings: Resolved) -> int:
    with _store(settings) as store:
        store.add_team(args.name)
    print(f"team {args.name!r} added")
    return 0


def cmd_teams_remove(args: argparse.Namespace, settings: Resolved) -> int:
    with _store(settings) as store:
        store.remove_team(args.name)
    print(f"team {args.name!r} removed (orders that name it keep the name)")
    return 0
