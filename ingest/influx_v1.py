"""InfluxDB 1.x writer: POST /write?db=..&precision=ms with gzipped line protocol."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from facility.batch import Batch
from facility.site import Site
from ingest.errors import StoreRejectedError
from ingest.http_writer import LineProtocolHttpWriter
from ingest.interface import WriteResult


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxV1Settings:
    url: str = "http://127.0.0.1:8086"
    database: str = "facility"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    probe_timeout_s: float = 2.0
    gzip_level: int = 1


class InfluxV1Writer(LineProtocolHttpWriter):
    name = "influxdb-v1"

    def __init__(
        self,
        site: Site,
        settings: InfluxV1Settings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        super().__init__(
            site,
            base_url=settings.url,
            write_path="/write",
            write_params={"db": settings.database, "precision": "ms"},
            ping_path="/ping",
            auth=(settings.username, settings.password or "") if settings.username else None,
            timeout_s=settings.timeout_s,
            probe_timeout_s=settings.probe_timeout_s,
            gzip_level=settings.gzip_level,
            transport=transport,
        )

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent in InfluxDB 1.x."""
        statement = urlencode({"q": f'CREATE DATABASE "{self.settings.database}"'})
        self.exchange("POST", f"/query?{statement}")

    def write(self, batch: Batch) -> WriteResult:
        try:
            return super().write(batch)
        except StoreRejectedError as exc:
            if exc.status != 404:  # "database not found": a new or wiped server
                raise
        self.ensure_database()
        return super().write(batch)
