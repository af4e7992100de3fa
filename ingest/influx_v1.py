"""InfluxDB 1.x writer: POST /write?db=..&precision=ms with gzipped line protocol."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import httpx

from facility.batch import Batch
from facility.catalog import KINDS
from facility.site import Site
from ingest import line_protocol
from ingest.errors import StoreRejectedError, StoreUnavailableError

MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxV1Settings:
    url: str = "http://127.0.0.1:8086"
    database: str = "facility"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    gzip_level: int = 1


class InfluxV1Writer:
    def __init__(
        self,
        site: Site,
        settings: InfluxV1Settings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        auth = (settings.username, settings.password or "") if settings.username else None
        self._http = httpx.Client(
            base_url=settings.url, timeout=settings.timeout_s, auth=auth, transport=transport
        )
        self._keys = {name: line_protocol.series_keys(site, spec) for name, spec in KINDS.items()}

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent in InfluxDB 1.x."""
        self._post("/query", params={"q": f'CREATE DATABASE "{self.settings.database}"'})

    def handle(self, batch: Batch) -> None:
        lines: list[str] = []
        for kb in batch:
            lines.extend(line_protocol.encode(self._keys[kb.kind.name], kb))
        if not lines:
            return
        body = gzip.compress("\n".join(lines).encode(), compresslevel=self.settings.gzip_level)
        self._post(
            "/write",
            params={"db": self.settings.database, "precision": "ms"},
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
        )

    def _post(
        self,
        path: str,
        *,
        params: dict[str, str],
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.post(path, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"InfluxDB at {self.settings.url} unreachable: {exc}"
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise StoreUnavailableError(
                f"InfluxDB {path} failed: {response.text[:MAX_ERROR_TEXT]}",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise StoreRejectedError(
                f"InfluxDB {path} refused the data: {response.text[:MAX_ERROR_TEXT]}",
                status=response.status_code,
            )
        return response

    def close(self) -> None:
        self._http.close()
