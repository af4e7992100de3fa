"""InfluxDB 2.x / 3.x writer: POST /api/v2/write?org=..&bucket=..&precision=ms with a token.

Also what VictoriaMetrics and other line-protocol stores accept. We build the line protocol
ourselves from the arrays (the `influxdb-client` package would take it as a string too, but
adds its own batching and retries, which live once in `ingest.delivery` here).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from facility.site import Site
from ingest.http_writer import LineProtocolHttpWriter


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxV2Settings:
    url: str = "http://127.0.0.1:8086"
    org: str = "facility"
    bucket: str = "facility"
    token: str | None = None
    timeout_s: float = 10.0
    probe_timeout_s: float = 2.0
    gzip_level: int = 1


class InfluxV2Writer(LineProtocolHttpWriter):
    name = "influxdb-v2"

    def __init__(
        self,
        site: Site,
        settings: InfluxV2Settings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        super().__init__(
            site,
            base_url=settings.url,
            write_path="/api/v2/write",
            write_params={"org": settings.org, "bucket": settings.bucket, "precision": "ms"},
            ping_path="/health",
            headers={"Authorization": f"Token {settings.token}"} if settings.token else None,
            timeout_s=settings.timeout_s,
            probe_timeout_s=settings.probe_timeout_s,
            gzip_level=settings.gzip_level,
            transport=transport,
        )
