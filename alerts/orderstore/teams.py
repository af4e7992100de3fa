"""Teams as a managed list: work orders are routed and reassigned only to teams that exist."""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy import Connection, delete, insert, select

from alerts.orderstore.base import StoreCore
from alerts.workorders import UnknownTeamError, WorkOrderInputError
from db.schema import teams

TEAM_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""Lower-case letters, digits, `.`, `_`, `-`; at most 64: a name typed the same way each time."""


class TeamList(StoreCore):
    """The teams an admin keeps; a team name not on it is refused where a team is set."""

    def list_teams(self) -> list[str]:
        with self.engine.connect() as conn:
            return _names(conn)

    def add_team(self, name: str) -> str:
        if not TEAM_NAME.match(name):
            raise WorkOrderInputError(
                f"a team name is 1-64 of a-z 0-9 . _ - (starting with a letter or digit),"
                f" not {name!r}",
                field="name",
            )
        with self._write() as conn:
            if name in _names(conn):
                raise WorkOrderInputError(f"team {name!r} exists already", field="name")
            conn.execute(insert(teams).values(name=name, created_ms=self.clock_ms()))
        return name

    def remove_team(self, name: str) -> None:
        """Orders that name it keep the name (their history stays true); none get it anew."""
        with self._write() as conn:
            self._check_team(conn, name)
            conn.execute(delete(teams).where(teams.c.name == name))

    def _check_team(self, conn: Connection, team: str) -> None:
        known = _names(conn)
        if team not in known:
            raise UnknownTeamError(team, known)


def _names(conn: Connection) -> list[str]:
    return [row.name for row in conn.execute(select(teams.c.name).order_by(teams.c.name))]
