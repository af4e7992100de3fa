"""Who sees what and who may change what: the one place the API's access rules live.

A steward sees only the buildings they are assigned; everything of another building is
"not found" to them. Technicians change only work orders assigned to them or to their team.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.auth.tokens import Claims
from api.auth.users import Role, User
from api.errors import PermissionDeniedError

if TYPE_CHECKING:
    from alerts.store import WorkOrder

STAFF_WHO_ASSIGN = frozenset({Role.ADMIN, Role.DISPATCHER})
DISPATCHER_STEPS = frozenset({"cancelled", "closed", "open"})
"""Transitions only a dispatcher or admin makes: dropping, signing off or reopening a job."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request, and what their role allows."""

    user: User
    claims: Claims
    """The token's: its session (refresh, logout) and when it expires (live streams)."""

    @property
    def token_expires_ms(self) -> int:
        return self.claims.expires_ms

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    # -- seeing ----------------------------------------------------------------------------

    @property
    def sees_all(self) -> bool:
        return self.user.role is not Role.STEWARD

    def can_see(self, building_id: str | None) -> bool:
        return self.sees_all or (building_id is not None and building_id in self.user.buildings)

    def building_filter(self, asked: Iterable[str] | None = None) -> list[str] | None:
        """The buildings a query may cover: what was asked for, cut to what this user sees
        (None: no restriction)."""
        if self.sees_all:
            return None if asked is None else list(asked)
        if asked is None:
            return sorted(self.user.buildings)
        return [b for b in asked if b in self.user.buildings]

    # -- changing --------------------------------------------------------------------------

    def owns(self, order: WorkOrder) -> bool:
        """A technician's own order: assigned to them, or to their team."""
        user = self.user
        return order.assignee == user.username or (
            user.team is not None and order.team == user.team
        )

    def require_role(self, *roles: Role) -> None:
        if self.user.role not in roles:
            raise PermissionDeniedError(
                f"a {self.user.role} may not do this (only {', '.join(map(str, roles))})"
            )

    def check_transition(self, order: WorkOrder, to: str) -> None:
        """Dispatchers and admins move any order; a technician their own, but cancelling,
        closing and reopening are the dispatcher's call."""
        if self.user.role in STAFF_WHO_ASSIGN:
            return
        if self.user.role is Role.TECHNICIAN and self.owns(order):
            if to in DISPATCHER_STEPS:
                raise PermissionDeniedError(
                    f"a technician may not move a work order to {to!r}"
                    " (cancel, close and reopen are for a dispatcher or admin)"
                )
            return
        raise PermissionDeniedError(self._not_yours(order, "change the status of"))

    def check_comment(self, order: WorkOrder) -> None:
        role = self.user.role
        if role in STAFF_WHO_ASSIGN or role is Role.STEWARD:
            return  # a steward only reaches orders of their own buildings
        if role is Role.TECHNICIAN and self.owns(order):
            return
        raise PermissionDeniedError(self._not_yours(order, "comment on"))

    def check_assign(self, order: WorkOrder, assignee: str | None, team: str | None) -> None:
        if self.user.role in STAFF_WHO_ASSIGN:
            return
        if self.user.role is Role.TECHNICIAN and self.owns(order):
            if assignee == self.user.username and team is None:
                return
            raise PermissionDeniedError(
                "a technician may only take an order (assign it to themselves, no team)"
            )
        raise PermissionDeniedError(self._not_yours(order, "assign"))

    def _not_yours(self, order: WorkOrder, what: str) -> str:
        if self.user.role is Role.TECHNICIAN:
            return (
                f"a technician may {what} only work orders assigned to them or their team; "
                f"work order {order.id} is assigned to {order.assignee or 'nobody'}"
                f" (team {order.team or 'none'})"
            )
        return f"a {self.user.role} may not {what} work orders"
