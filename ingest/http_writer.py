"""What InfluxDB 1.x and 2.x/3.x writers share: line protocol over HTTP, and how to read the
answer. Every failure to get an answer is mapped to ours here, with its cause. The requests go
through `ingest.http_exchange` (kept-alive `http.client` connections: the write is on the
gateway's hot path), or through an httpx transport when one is given.

    2xx            written
    400 partial    written, except the points named in the error (returned as rejected)
    413            PayloadTooLargeError: the caller splits the batch
    429, 5xx       StoreUnavailableError, with Retry-After when the store sent one
    other 4xx      StoreRejectedError: the store refuses the whole batch
    no answer      StoreUnavailableError
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import httpx

from facility.batch import Batch
from facility.site import Site
from ingest import gzip_body, line_protocol
from ingest.errors import PayloadTooLargeError, StoreRejectedError, StoreUnavailableError
from ingest.http_exchange import (
    ExchangeError,
    HttpAnswer,
    HttpExchange,
    HttpxExchange,
    PooledConnections,
)
from ingest.interface import RejectedPoints, WriteResult

MAX_ERROR_TEXT = 500
MAX_SAMPLE_LINES = 5
_DROPPED = re.compile(r"dropped=(\d+)")
_TYPE_CONFLICT = re.compile(r'input field \\?"([^"\\]+)\\?" on measurement \\?"([^"\\]+)\\?"')
_UNPARSABLE = re.compile(r"unable to parse '([^']*)'")


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _error_text(response: HttpAnswer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_TEXT]
    if isinstance(body, Mapping):
        return str(body.get("error") or body.get("message") or body)[:MAX_ERROR_TEXT]
    return str(body)[:MAX_ERROR_TEXT]


def partial_write_rejections(error: str, lines: list[str]) -> tuple[RejectedPoints, ...]:
    """What a 400 "partial write" dropped, with the offending lines where we can find them."""
    dropped_match = _DROPPED.search(error)
    dropped = int(dropped_match[1]) if dropped_match else 0
    sample: list[str] = []
    unparsable = _UNPARSABLE.findall(error)
    conflict = _TYPE_CONFLICT.search(error)
    if unparsable:
        sample = unparsable[:MAX_SAMPLE_LINES]
        dropped = dropped or len(unparsable)
    elif conflict:
        field_name, measurement = conflict[1], conflict[2]
        sample = [
            line
            for line in lines
            if line.startswith(f"{measurement},")
            and (f" {field_name}=" in line or f",{field_name}=" in line)
        ][:MAX_SAMPLE_LINES]
    reason = (
        "field_type_conflict" if conflict else "unparsable_point" if unparsable else "partial_write"
    )
    return (RejectedPoints(reason, error, dropped, "\n".join(sample)[:MAX_ERROR_TEXT]),)


class LineProtocolHttpWriter:
    """Sends a batch as one gzipped line-protocol request."""

    name = "line-protocol"

    def __init__(
        self,
        site: Site,
        *,
        base_url: str,
        write_path: str,
        write_params: Mapping[str, str],
        ping_path: str,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout_s: float = 10.0,
        probe_timeout_s: float = 2.0,
        gzip_level: int = 1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._write_target = f"{write_path}?{urlencode(write_params)}"
        self._ping_path = ping_path
        self._gzip_level = gzip_level
        self._timeout_s = timeout_s
        self._probe_timeout_s = probe_timeout_s
        self._headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._write_headers = {
            **self._headers,
            "Content-Type": "text/plain; charset=utf-8",
            **({"Content-Encoding": "gzip"} if gzip_body.compresses(gzip_level) else {}),
        }
        self._http: HttpExchange = (
            PooledConnections(base_url) if transport is None else HttpxExchange(base_url, transport)
        )
        self._keys = line_protocol.kind_keys(site)

    def write(self, batch: Batch) -> WriteResult:
        text, count = line_protocol.encode_body(self._keys, batch)
        if not count:
            return WriteResult(0)
        body = gzip_body.compress(text, self._gzip_level)
        response = self.exchange("POST", self._write_target, body, self._write_headers)
        if response.status_code == 400:
            error = _error_text(response)
            if "partial write" in error:
                rejected = partial_write_rejections(error, text.decode().split("\n"))
                return WriteResult(count - sum(r.count for r in rejected), rejected)
            raise StoreRejectedError(f"{self.name} refused the batch: {error}", status=400)
        return WriteResult(count)

    def ping(self) -> None:
        response = self.exchange("GET", self._ping_path, timeout_s=self._probe_timeout_s)
        if response.status_code >= 300:
            raise StoreUnavailableError(f"{self.name} ping answered", status=response.status_code)

    def exchange(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        """One request; errors other than a 400 are mapped to ingest errors here."""
        try:
            response = self._http.exchange(
                method,
                target,
                self._headers if headers is None else headers,
                body,
                self._timeout_s if timeout_s is None else timeout_s,
            )
        except ExchangeError as exc:
            raise StoreUnavailableError(f"{self.name} at {self.base_url} unreachable: {exc}") from (
                exc.__cause__ or exc
            )
        status = response.status_code
        path = target.split("?", 1)[0]
        if status == 413:
            raise PayloadTooLargeError(f"{self.name}: batch too large", status=413)
        if status == 429 or status >= 500:
            raise StoreUnavailableError(
                f"{self.name} {path} failed: {_error_text(response)}",
                status=status,
                retry_after_s=retry_after_s(response.headers.get("retry-after")),
            )
        if status >= 400 and status != 400:
            raise StoreRejectedError(f"{self.name} {path}: {_error_text(response)}", status=status)
        return response

    def close(self) -> None:
        self._http.close()
