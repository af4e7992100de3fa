"""What the HTTP history readers share: one httpx client per store, and its errors mapped to ours
at this edge, with their cause.

    no answer, timeout      StoreUnavailableError
    401, 403                StoreUnavailableError (the credentials are refused: a setting)
    429, 5xx                StoreUnavailableError
    other 4xx               handed back: only the reader knows what its store means by it
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from ingest.errors import StoreUnavailableError

MAX_ERROR_TEXT = 300


def error_text(response: httpx.Response) -> str:
    """The store's own words for a refusal, short."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:MAX_ERROR_TEXT]
    if isinstance(body, Mapping):
        return str(body.get("error") or body.get("message") or body)[:MAX_ERROR_TEXT]
    return str(body)[:MAX_ERROR_TEXT]


class QueryClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            headers=dict(headers or {}),
            auth=auth,
            transport=transport,
        )

    def _check(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if status in (401, 403):
            raise StoreUnavailableError(
                f"{self.name} at {self.base_url} refused our credentials: {error_text(response)}",
                status=status,
            )
        if status == 429 or status >= 500:
            raise StoreUnavailableError(
                f"{self.name} {path} failed: {error_text(response)}", status=status
            )

    def get(self, path: str, params: Mapping[str, str | list[str]]) -> httpx.Response:
        """The answer (2xx or a 4xx for the reader to explain); outages raised."""
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._check(response, path)
        return response

    @contextmanager
    def stream(self, path: str, params: Mapping[str, str | list[str]]) -> Iterator[httpx.Response]:
        """Like `get`, for answers read as they arrive; a broken stream is an outage too."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, path)
                yield response
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.HTTPError) -> StoreUnavailableError:
        return StoreUnavailableError(f"{self.name} at {self.base_url} unreachable: {exc}")

    def close(self) -> None:
        self._http.close()
