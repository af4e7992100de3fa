"""Who sees what and who may change what: the one place the API's access rules live.

A steward sees only the buildings they are assigned, and every building of the whole sites
they are assigned (a portfolio's estates); everything of another building is "not found" to
them. A dispatcher or technician limited to sites (a regional desk) sees only those sites'
buildings; admins, and the other roles without sites, see everything. Technicians change only
work orders assigned to them or to their team.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from api.auth.tokens import Claims
from api.auth.users import Role, User
from api.errors import PermissionDeniedError

if TYPE_CHECKING:
    from alerts.store import WorkOrder
    from facility.site import Site

SiteMap = Mapping[str, str]
"""Building id -> the id of the site it belongs to; each site's own id -> itself (orders of a
whole site, e.g. "site silent", are filed on the site's id)."""


def site_map(site: Site) -> SiteMap:
    """The deployment's `SiteMap` (one site: every building -> that site)."""
    out = {s.id: s.id for s in site.sites}
    out.update({b.id: b.site_id or site.id for b in site.buildings})
    return MappingProxyType(out)


STAFF_WHO_ASSIGN = frozenset({Role.ADMIN, Role.DISPATCHER})
DISPATCHER_STEPS = frozenset({"cancelled", "closed", "open"})
"""Transitions only a dispatcher or admin makes: dropping, signing off or reopening a job."""


def user_sees(user: User, sites: SiteMap, building_id: str | None) -> bool:
    """Whether `user` sees the building (or a site's own orders, by its id)."""
    if user.role is not Role.STEWARD and not user.sites:
        return True
    if building_id is None:
        return False
    if building_id in user.buildings and user.role is Role.STEWARD:
        return True
    return sites.get(building_id) in user.sites


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request, and what their role allows."""

    user: User
    claims: Claims
    """The token's: its session (refresh, logout) and when it expires (live streams)."""
    sites: SiteMap = field(default_factory=dict)
    """Which site each building is of: needed only for a user limited to sites."""

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
        """No limit at all: not a steward, and not limited to sites."""
        return self.user.role is not Role.STEWARD and not self.user.sites

    def can_see(self, building_id: str | None) -> bool:
        return user_sees(self.user, self.sites, building_id)

    def can_see_site(self, site_id: str) -> bool:
        """Whether any building of the site is visible (a site of none does not exist)."""
        if self.sees_all or site_id in self.user.sites:
            return True
        return self.user.role is Role.STEWARD and any(
            self.sites.get(b) == site_id for b in self.user.buildings
        )

    def visible_ids(self) -> frozenset[str]:
        """Every building (and site-wide) id a limited user sees; for one who sees all, every
        id the site map knows."""
        if self.sees_all:
            return frozenset(self.sites)
        own = self.user.buildings if self.user.role is Role.STEWARD else frozenset()
        return own | {b for b, s in self.sites.items() if s in self.user.sites}

    def building_filter(self, asked: Iterable[str] | None = None) -> list[str] | None:
        """The buildings a query may cover: what was asked for, cut to what this user sees
        (None: no restriction). A site scope becomes its buildings' ids (and the site's own,
        for its site-wide orders): queries filter by building id."""
        if self.sees_all:
            return None if asked is None else list(asked)
        if asked is None:
            return sorted(self.visible_ids())
        return [b for b in asked if self.can_see(b)]

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
