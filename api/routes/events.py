"""Live updates: a Server-Sent Events stream of what the user may see."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.auth.scope import Principal
from api.deps import AppContext, Context, CurrentUser, site_or_404
from api.errors import AuthenticationError
from api.events import Event, EventHub
from api.http.openapi import errors
from api.schemas import Id
from facility.clock import Clock

router = APIRouter(prefix="/api/v1", tags=["events"])

SessionCheck = Callable[[], Awaitable[str | None]]
"""None while the stream's session is still on; else why it ended."""
Replay = Callable[[int], Awaitable[list[Event] | None]]
"""The feed's events after an id (any replica's), or None when they are not all kept."""
MAX_EVENT_ID = 2**63 - 1


def session_check(context: AppContext, principal: Principal) -> SessionCheck:
    """Re-checks the stream's token against the database (disabled, deleted, logged out,
    version bumped by a password, role or building change)."""

    async def check() -> str | None:
        try:
            await context.read(context.sessions.user, principal.claims)
        except AuthenticationError as exc:
            return str(exc)
        return None

    return check


async def event_stream(
    hub: EventHub,
    principal: Principal,
    *,
    keepalive_s: float,
    clock_ms: Clock,
    request: Request | None = None,
    last_event_id: int | None = None,
    replay: Replay | None = None,
    check: SessionCheck | None = None,
    within: frozenset[str] | None = None,
) -> AsyncIterator[bytes]:
    """`ready`; after a reconnect with `last_event_id`, the events missed since (or `reset` when
    they are no longer all kept: reload); then the events of the user's buildings, a keep-alive
    comment when quiet, and `token_expired` when the token runs out (the stream ends there).
    The missed events come from the shared feed (`replay`), read after subscribing, so none
    falls in between; one that arrives both ways is sent once (by its id).

    `check` runs before every event and every keep-alive: when the session has ended (the user
    disabled, their buildings or role changed, logged out) the stream sends `session_ended`
    instead and ends, so nothing more reaches a user who lost the right to see it.

    `within`: only events of these buildings (a site's, and the site's own id: `?site=`)."""

    def accept(event: Event) -> bool:
        if within is not None and event.building_id not in within:
            return False
        return principal.can_see(event.building_id)

    subscription = hub.subscribe(accept)
    try:
        ready = orjson.dumps({"type": "ready", "user": principal.username})
        yield b"event: ready\ndata: %s\n\n" % ready
        sent = 0  # events up to this id were replayed (or seen before the reconnect)
        if last_event_id is not None:
            missed = None if replay is None else await replay(last_event_id)
            if missed is None:
                yield b'event: reset\ndata: {"type": "reset"}\n\n'
            else:
                sent = max([last_event_id, *(earlier.id for earlier in missed)])
                for earlier in missed:
                    if accept(earlier):
                        yield earlier.sse()
        while True:
            left_s = (principal.token_expires_ms - clock_ms()) / 1000
            if left_s <= 0:
                yield b'event: token_expired\ndata: {"type": "token_expired"}\n\n'
                return
            if request is not None and await request.is_disconnected():
                return
            event = await subscription.get(min(keepalive_s, left_s))
            if event is not None and event.id <= sent:
                continue  # replayed already
            if check is not None and (event is not None or not subscription.closed):
                ended = await check()
                if ended is not None:
                    data = orjson.dumps({"type": "session_ended", "detail": ended})
                    yield b"event: session_ended\ndata: %s\n\n" % data
                    return
            if event is not None:
                yield event.sse()
            elif subscription.closed:
                return  # the hub closed (shutdown) or this client fell too far behind
            else:
                yield b": keep-alive\n\n"
    finally:
        subscription.close()


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an event stream"},
        **errors(404),
    },
)
async def events(
    request: Request,
    principal: CurrentUser,
    context: Context,
    access_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="the token, for an EventSource without the cookie; only accepted "
            "when the server allows it (api.token_in_query, off by default)",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_EVENT_ID,
            description="the id of the last event seen; a browser's EventSource sends it when "
            "it reconnects (to any replica: ids are the database's)",
        ),
    ] = None,
    site_id: Annotated[
        Id | None, Query(alias="site", description="only this site's events (a portfolio)")
    ] = None,
) -> StreamingResponse:
    within = None
    if site_id is not None:
        part = site_or_404(context, principal, site_id)
        within = frozenset({part.id, *(b.id for b in part.buildings)})
    stream = event_stream(
        context.hub,
        principal,
        keepalive_s=context.settings.sse_keepalive_s,
        clock_ms=context.clock_ms,
        request=request,
        last_event_id=last_event_id,
        replay=functools.partial(context.read, context.feed.replay),
        check=session_check(context, principal),
        within=within,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
