"""Security headers on every answer of the API and the dashboard (pure ASGI).

The dashboard loads only its own files (no inline script or style, no CDN), so its policy is
`default-src 'self'`. Swagger UI at /docs is started from a file too (`static/docs.js`); its
stylesheet draws icons as `data:` images, allowed on /docs alone.
"""

from __future__ import annotations

from typing import Final

from api.metrics import ASGIApp, Message, Receive, Scope, Send

CSP: Final = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_CSP: Final = CSP + "; img-src 'self' data:"
COMMON: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, docs_path: str = "/docs") -> None:
        self.app = app
        self.docs_path = docs_path
        self.headers = [(b"content-security-policy", CSP.encode()), *COMMON]
        self.docs_headers = [(b"content-security-policy", DOCS_CSP.encode()), *COMMON]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope["path"] == self.docs_path else self.headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0] != b"server"),
                    *extra,
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
