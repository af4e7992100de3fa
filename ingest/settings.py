"""Which time-series store, and how to reach it (provisional; the registry's own lands next)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

StoreKind = Literal["sqlite", "influx-v1", "influx-v2"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    kind: StoreKind = "sqlite"
    """Time-series store: sqlite (embedded), influx-v1 (InfluxQL), influx-v2 (2.x/3.x API)."""
    sqlite_path: Path = Path("var/telemetry.sqlite3")
    """The embedded store's file."""
    influx_url: str = "http://127.0.0.1:8086"
    """InfluxDB URL."""
    influx_db: str = "facility"
    """InfluxDB 1.x database."""
    influx_username: str | None = None
    """InfluxDB 1.x user."""
    influx_password: str | None = field(default=None, repr=False)
    """InfluxDB 1.x password."""
    influx_org: str = "facility"
    """InfluxDB 2.x/3.x organisation."""
    influx_bucket: str = "facility"
    """InfluxDB 2.x/3.x bucket."""
    influx_token: str | None = field(default=None, repr=False)
    """InfluxDB 2.x/3.x API token."""
