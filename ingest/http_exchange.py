"""How the line-protocol writers speak HTTP: one request out, its whole answer back.

The store write is on the gateway's hot path, a request per batch part. httpx's client spent
0.7-0.9 ms of CPU per request on this machine (merging the base URL and params, its header and
URL models, the auth, cookie and redirect flow), stdlib `http.client` 0.2-0.3 ms for the same
POST (docs/benchmarks.md). So writers talk through `PooledConnections` (kept-alive
`http.client` connections, one per concurrent caller); `HttpxExchange` serves a caller that
brings its own httpx transport (the tests' `httpx.MockTransport`). Both give the writer the
same `HttpAnswer`, so its reading of answers is one piece of code.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson


class ExchangeError(Exception):
    """No answer: refused, reset, timed out, not HTTP. `__cause__` is what the client raised."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status_code: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not."""
        return orjson.loads(self.content)


class HttpExchange(Protocol):
    def exchange(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpAnswer:
        """Send `method target` (a path with its query, below the base URL); ExchangeError
        when no answer came."""

    def close(self) -> None: ...


# A kept-alive connection the server had closed fails on reuse before any answer; the request
# is sent once more on a new connection (a repeated line-protocol write stores the same points).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class PooledConnections:
    """Kept-alive `http.client` connections to one base URL, each used by one caller at a
    time; as many as callers at once (the writer's lanes and its health probe)."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl_context
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def exchange(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpAnswer:
        connection, reused = self._take(timeout_s)
        while True:
            try:
                answer, keep = self._send(connection, method, target, headers, body)
                break
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if not (reused and isinstance(exc, _STALE)):
                    raise ExchangeError(f"{type(exc).__name__}: {exc}") from exc
                connection, reused = self._new(timeout_s), False
        if keep:
            self._give_back(connection)
        else:
            connection.close()
        return answer

    def _send(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> tuple[HttpAnswer, bool]:
        connection.request(method, self._prefix + target, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        answer = HttpAnswer(
            response.status, {name.lower(): value for name, value in response.getheaders()}, content
        )
        return answer, not response.will_close

    def _take(self, timeout_s: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._closed:
                raise ExchangeError("the connections are closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return self._new(timeout_s), False
        connection.timeout = timeout_s
        if connection.sock is not None:
            connection.sock.settimeout(timeout_s)
        return connection, True

    def _new(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=timeout_s,
                context=self._ssl or ssl.create_default_context(),
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class HttpxExchange:
    """The same exchange through an httpx transport (a caller's own, or a test's fake)."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport) -> None:
        self._client = httpx.Client(base_url=base_url, transport=transport)

    def exchange(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpAnswer:
        try:
            response = self._client.request(
                method, target, headers=headers, content=body, timeout=timeout_s
            )
        except httpx.HTTPError as exc:
            raise ExchangeError(f"{type(exc).__name__}: {exc}") from exc
        return HttpAnswer(
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            response.content,
        )

    def close(self) -> None:
        self._client.close()
