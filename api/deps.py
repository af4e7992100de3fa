"""Dependencies shared by the routes: the application context, the user behind a request, and
the one object-level check every route with an id goes through.

The dependencies that do no I/O (or, for the user, one small read through `AppContext.read`)
are `async`: FastAPI would run a plain `def` dependency in its thread pool, one thread hop each.

`visible_or_404` is that check: an object of a building the user may not see answers 404, the
same as one that does not exist. The typed dependencies (`BuildingDep`, `UnitDep`,
`DeviceDep`, `WorkOrderDep`) look an id up and apply it; routes take those instead of raw ids.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, TypeVar

from anyio import to_thread
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alerts.maintenance.plans import PlanSet
from alerts.maintenance.settings import MaintenanceSettings
from alerts.store import WorkOrder, WorkOrderStore
from alerts.workorders import WorkOrderNotFoundError
from api.auth.public_codes import StatusCodes
from api.auth.ratelimit import SqlRateLimiter
from api.auth.scope import Principal, SiteMap
from api.auth.sessions import Sessions
from api.auth.tokens import ReportCodes, TokenSigner
from api.auth.users import Role, User, UserStore
from api.errors import AuthenticationError
from api.events import EventHub
from api.feed import LiveFeed
from api.http.clients import client_address
from api.metrics import ApiMetrics
from api.settings import ApiSettings
from api.uploads import PhotoDecodes
from facility.clock import Clock
from facility.site import Building, Device, Site, Unit
from ingest.history import HistoryStore

T = TypeVar("T")
COOKIE: Final = "facility_token"
EVENTS_PATH: Final = "/api/v1/events"
MAX_ID: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class AppContext:
    site: Site
    store: WorkOrderStore
    clock_ms: Clock
    settings: ApiSettings
    users: UserStore
    sessions: Sessions
    tokens: TokenSigner
    report_codes: ReportCodes
    status_codes: StatusCodes
    """Each building's public status page (`api.auth.public_codes`)."""
    hub: EventHub
    feed: LiveFeed
    """The live-updates feed in the database, shared by every replica (replays)."""
    metrics: ApiMetrics
    login_limiter: SqlRateLimiter
    report_limiter: SqlRateLimiter
    code_limiter: SqlRateLimiter
    """Residents' reports per unit's report code (a code shared around cannot flood)."""
    units: Mapping[str, Unit]
    history: HistoryStore | None = None
    inline_reads: bool = False
    plans: PlanSet = field(default_factory=lambda: PlanSet(()))
    """The maintenance plans (the compliance logbook)."""
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    site_map: SiteMap = field(default_factory=dict)
    """Building id (and site id) -> its site's id (`api.auth.scope.site_map`)."""
    photo_decodes: PhotoDecodes = field(default_factory=PhotoDecodes)
    """Residents' photos are decoded on threads of their own, not the database's."""

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A bounded database read: on the event loop (`inline_reads`) or a worker thread."""
        if self.inline_reads:
            return fn(*args, **kwargs)
        return await to_thread.run_sync(functools.partial(fn, *args, **kwargs))


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/v1/auth/login. GET requests also take the "
    f"`{COOKIE}` cookie; {EVENTS_PATH} takes `?access_token=` only when the server allows it "
    "(api.token_in_query).",
)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def token_from(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    *,
    query_allowed: bool = False,
    cookie_allowed: bool = False,
) -> str:
    """The request's token: the Authorization header; for reads (and `cookie_allowed`) the
    cookie; for the event stream the query parameter, if the server allows it."""
    if request.headers.get("authorization"):
        if credentials is None or not credentials.credentials.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        return credentials.credentials.strip()
    cookie = request.cookies.get(COOKIE)
    if request.method in ("GET", "HEAD") or cookie_allowed:
        if cookie:
            return cookie
        if query_allowed and request.url.path == EVENTS_PATH:
            query = request.query_params.get("access_token")
            if query:
                return query
    if cookie:
        raise AuthenticationError("changes need the token in the Authorization header")
    raise AuthenticationError("log in first: no token (Authorization: Bearer <token>)")


async def get_principal(
    request: Request, context: Context, credentials: BearerCredentials
) -> Principal:
    """The user behind the token, checked against the database on every request (their
    session may have been logged out, or their version bumped, by any process)."""
    token = token_from(request, credentials, query_allowed=context.settings.token_in_query)
    claims = context.tokens.decode(token)
    user = await context.read(context.sessions.user, claims)
    return Principal(user, claims, context.site_map)


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: CurrentUser) -> Principal:
    principal.require_role(Role.ADMIN)
    return principal


Admin = Annotated[Principal, Depends(require_admin)]


def not_found(detail: str) -> HTTPException:
    return HTTPException(status_code=404, detail=detail)


def visible_or_404(principal: Principal, building_id: str | None, detail: str) -> None:
    """The object-level check of every route: what the user may not see does not exist
    (`building_id` None: the object was not found at all)."""
    if building_id is None or not principal.can_see(building_id):
        raise not_found(detail)


def site_or_404(context: AppContext, principal: Principal, site_id: str) -> Site:
    """A site of the deployment the user sees (a building of it): else 404, the same for an
    unknown site and an invisible one."""
    found = next((s for s in context.site.sites if s.id == site_id), None)
    if found is None or not principal.can_see_site(site_id):
        raise not_found(f"no site {site_id!r}")
    return found


def unprocessable(loc: tuple[str, ...], msg: str) -> HTTPException:
    """A 422 in the same shape as FastAPI's own validation errors."""
    return HTTPException(
        status_code=422, detail=[{"loc": list(loc), "msg": msg, "type": "value_error"}]
    )


_T = TypeVar("_T")


def _found_and_visible(
    found: _T | None, building_id: Callable[[_T], str], principal: Principal, detail: str
) -> _T:
    """`found`, unless it is missing or in a building the user may not see: then a 404."""
    if found is None:
        raise not_found(detail)
    visible_or_404(principal, building_id(found), detail)
    return found


async def get_building(
    building_id: Annotated[str, Path(max_length=64)], context: Context, principal: CurrentUser
) -> Building:
    building = context.site.building_by_id.get(building_id)
    return _found_and_visible(building, _id, principal, f"no building {building_id!r}")


async def get_unit(
    unit_id: Annotated[str, Path(max_length=64)], context: Context, principal: CurrentUser
) -> Unit:
    unit = context.units.get(unit_id)
    return _found_and_visible(unit, _building_id, principal, f"no unit {unit_id!r}")


async def get_device(
    device_id: Annotated[str, Path(max_length=64)], context: Context, principal: CurrentUser
) -> Device:
    device = context.site.by_id.get(device_id)
    return _found_and_visible(device, _building_id, principal, f"no device {device_id!r}")


def _id(building: Building) -> str:
    return building.id


def _building_id(item: Unit | Device) -> str:
    return item.building_id


def get_work_order(
    work_order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    context: Context,
    principal: CurrentUser,
) -> WorkOrder:
    detail = f"no work order {work_order_id}"
    try:
        order = context.store.get(work_order_id)
    except WorkOrderNotFoundError:
        raise not_found(detail) from None
    visible_or_404(principal, order.building_id, detail)
    return order


BuildingDep = Annotated[Building, Depends(get_building)]
UnitDep = Annotated[Unit, Depends(get_unit)]
DeviceDep = Annotated[Device, Depends(get_device)]
WorkOrderDep = Annotated[WorkOrder, Depends(get_work_order)]


def client_key(request: Request) -> str:
    """Who a rate limit counts: the client's address. X-Forwarded-For counts only from a peer
    in `trusted_proxies` (`api.http.clients`): rotating it from anywhere else changes nothing."""
    context: AppContext = request.app.state.context
    return client_address(request, context.settings.trusted_proxies)


def user_out(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": str(user.role),
        "team": user.team,
        "buildings": sorted(user.buildings),
        "sites": sorted(user.sites),
    }
