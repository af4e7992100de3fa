"""Request bodies: a size limit enforced while the body streams in, and a safe JSON decode.

`RequestGuard` is pure ASGI and sits in front of the app:

- A `Content-Length` over the limit is answered 413 before a byte of the body is read (and the
  connection closed, so the rest is never read either). A body without one (chunked) is
  counted as it arrives and refused once it passes the limit: a 200 MB upload costs the
  process at most the limit plus one chunk, and no worker waits on it.
- A JSON body (at most the limit, so buffering it is bounded) is decoded with orjson before
  FastAPI sees it: invalid UTF-8, lone surrogates (`"\\ud800"`, which the standard library
  accepts and which then fail to encode, in the database or in the 422 that echoed them),
  NaN, 65-bit integers and nesting deeper than `max_json_depth` are a 422 here, in FastAPI's
  error shape, never a 500 later.

Most routes take a few hundred bytes; `ROUTE_BODY_LIMITS` raises the limit where a valid body
can be larger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from fastapi import HTTPException

from api.metrics import ASGIApp, Message, Receive, Scope, Send

BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROUTE_BODY_LIMITS: Final[Mapping[tuple[str, str], int]] = {
    ("POST", "/api/v1/users"): 256 * 1024,
}
"""(method, path) -> the least limit of that route. A user may be given up to 1,000 buildings
of 64-character ids: about 70 kB of valid JSON (more with `\\u` escapes)."""


class BodyTooLargeError(HTTPException):
    """Raised from `receive()` when the app reads past the limit (FastAPI answers it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit), headers={"Connection": "close"})


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_depth: int,
        route_limits: Mapping[tuple[str, str], int] = ROUTE_BODY_LIMITS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.route_limits = {key: max(limit, max_body_bytes) for key, limit in route_limits.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        content_type: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-type":
                content_type = value
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body (HTTP/1.1): the hot path of GETs
            return
        method = scope["method"]
        limit = self.route_limits.get((method, scope["path"]), self.max_body_bytes)
        if length is not None and length > limit:
            await answer(send, 413, too_large(limit), close=True)
            return
        if method in BODY_METHODS and _is_json(content_type):
            await self._json(scope, receive, send, limit)
            return
        await self._streamed(scope, receive, send, limit)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Buffer the (bounded) body, check it decodes safely, hand it on unchanged."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: no one to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await answer(send, 413, too_large(limit), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body, self.max_json_depth) if body else None
        if problem is not None:
            await answer(send, 422, [problem])
            return
        await self.app(scope, _replay(body, receive), send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Any other body: counted as the app reads it; past the limit, a 413."""
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except BodyTooLargeError:
            if started:
                raise
            await answer(send, 413, too_large(limit), close=True)


def _is_json(content_type: bytes | None) -> bool:
    """What FastAPI would parse as JSON: no content type, application/json, application/*+json."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message, then the connection's own messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def json_problem(body: bytes, max_depth: int) -> dict[str, Any] | None:
    """Why this body is not JSON we accept (one 422 error entry), or None."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return {
            "loc": ["body"],
            "msg": f"not valid JSON (UTF-8, no lone surrogates): {exc.msg} at {exc.pos}",
            "type": "json_invalid",
        }
    if body.count(b"[") + body.count(b"{") > max_depth and nesting_exceeds(value, max_depth):
        return {
            "loc": ["body"],
            "msg": f"JSON nested more than {max_depth} levels deep",
            "type": "json_too_deep",
        }
    return None


def nesting_exceeds(value: Any, max_depth: int) -> bool:
    """Objects and arrays nested deeper than `max_depth` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


async def answer(send: Send, status: int, detail: Any, *, close: bool = False) -> None:
    """A JSON error answer in FastAPI's shape, sent before (or instead of) the app."""
    body = orjson.dumps({"detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
