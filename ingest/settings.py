"""The time-series store's settings: which store, and every option of each.

One frozen object, built once by the composition root (defaults < TOML < FACILITY_* < flags);
`ingest.registry` turns it into a writer and a history reader. Each field has a default, a
simple type, its unit in its name and a docstring, which is what the settings tree reads to
make config keys, environment variables and flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from facility.errors import SettingsError
from facility.hosts import is_loopback

StoreKind = Literal["sqlite", "influx-v1", "influx-v2"]
STORE_KINDS: tuple[StoreKind, ...] = get_args(StoreKind)
DEFAULT_HTTP_CONNECTIONS = 2
"""InfluxDB 1.6.7 took 61-91k of the gateway's points/s from one writer, 105-117k from two."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    kind: StoreKind = "sqlite"
    """Time-series store: sqlite (embedded file), influx-v1 (InfluxDB 1.x), influx-v2
    (InfluxDB 2.x/3.x line-protocol API, or VictoriaMetrics)."""

    sqlite_path: Path = Path("var/telemetry.sqlite3")
    """The embedded store's file (kind sqlite)."""
    sqlite_retention_days: int = 30
    """Readings older than this many days are deleted from the embedded store; 0 keeps all."""
    sqlite_prune_interval_s: float = 600.0
    """How often the embedded store is pruned of readings past their retention."""

    influx_url: str = "http://127.0.0.1:8086"
    """Base URL of InfluxDB (or of VictoriaMetrics for influx-v2) for writes and queries."""
    influx_db: str = "facility"
    """InfluxDB 1.x database (created at start if missing)."""
    influx_username: str | None = None
    """InfluxDB 1.x user (basic auth); none for an open server."""
    influx_password: str | None = None
    """InfluxDB 1.x password."""
    influx_org: str = "facility"
    """InfluxDB 2.x/3.x organisation."""
    influx_bucket: str = "facility"
    """InfluxDB 2.x/3.x bucket."""
    influx_token: str | None = None
    """InfluxDB 2.x/3.x API token (sent as `Authorization: Token ...`, also on queries)."""
    influx_query_url: str | None = None
    """influx-v2 history: base URL of the Prometheus-style query API (/api/v1/export),
    e.g. a VictoriaMetrics cluster's http://vmselect:8481/select/0/prometheus; default
    influx-url."""
    influx_write_timeout_s: float = 10.0
    """How long one write to InfluxDB may take before it counts as a store outage."""
    influx_probe_timeout_s: float = 2.0
    """How long the health probe (ping) may take: a store that does not answer within it is
    down, so a hung store shows as degraded within delivery-health-interval-s plus this."""
    influx_query_timeout_s: float = 30.0
    """How long one history query (a chart, a backtest chunk) may take."""
    influx_gzip_level: int | None = None
    """gzip level of line-protocol writes (0 none, 1 fastest ... 9 smallest); none = 0 for a
    store on this host (influx-url names localhost or a loopback address: compressing costs
    both ends CPU, InfluxDB ~4 % more for the same points) and 1 for any other. 1 is made by
    ISA-L (about a fifth of zlib's CPU; 2-9 are zlib's): level 6 costs the gateway 2.5x zlib
    1's CPU for a quarter fewer bytes, and the store's CPU to inflate either is the same
    (docs/benchmarks.md); raise it for a slow link."""
    write_connections: int | None = None
    """Store connections the gateway writes through at once, a device always through the same
    one (its order kept); none = the store's default: 2 for influx-v1/influx-v2 (InfluxDB
    takes more points/s from two writers), 1 for sqlite (one writer at a time anyway)."""

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS:
            raise SettingsError(
                "kind", f"store {self.kind!r} is not one of {', '.join(STORE_KINDS)}"
            )
        if self.sqlite_retention_days < 0:
            raise SettingsError("sqlite-retention-days", "must be 0 (keep all) or more")
        if self.sqlite_prune_interval_s <= 0:
            raise SettingsError("sqlite-prune-interval-s", "must be more than 0 seconds")
        for option, url in (("influx-url", self.influx_url),
                            ("influx-query-url", self.influx_query_url)):  # fmt: skip
            if url is not None and not url.startswith(("http://", "https://")):
                raise SettingsError(option, f"{url!r} must start with http:// or https://")
        for option, name in (("influx-db", self.influx_db), ("influx-org", self.influx_org),
                             ("influx-bucket", self.influx_bucket)):  # fmt: skip
            if not name.strip():
                raise SettingsError(option, "must not be empty")
        if self.influx_gzip_level is not None and not 0 <= self.influx_gzip_level <= 9:
            raise SettingsError(
                "influx-gzip-level", "must be 0 (not compressed), 1 (fastest) to 9 (smallest)"
            )
        if self.write_connections is not None and self.write_connections < 1:
            raise SettingsError("write-connections", "must be at least 1")
        if self.kind == "sqlite" and (self.write_connections or 1) > 1:
            raise SettingsError(
                "write-connections", "sqlite takes one writer at a time: must be 1 (or none)"
            )
        if self.influx_password is not None and self.influx_username is None:
            raise SettingsError("influx-password", "is given without influx-username")
        timeouts = {
            "influx-write-timeout-s": self.influx_write_timeout_s,
            "influx-probe-timeout-s": self.influx_probe_timeout_s,
            "influx-query-timeout-s": self.influx_query_timeout_s,
        }
        for option, seconds in timeouts.items():
            if seconds <= 0:
                raise SettingsError(option, "must be more than 0 seconds")

    @property
    def connections(self) -> int:
        """The number of store connections to write through (`write_connections` resolved)."""
        if self.write_connections is not None:
            return self.write_connections
        return 1 if self.kind == "sqlite" else DEFAULT_HTTP_CONNECTIONS

    @property
    def gzip_level(self) -> int:
        """The gzip level of writes (`influx_gzip_level` resolved: 0 for a store on this host,
        else 1, unless set)."""
        if self.influx_gzip_level is not None:
            return self.influx_gzip_level
        return 0 if on_this_host(self.influx_url) else 1

    @property
    def sqlite_retention_ms(self) -> int | None:
        """The retention as a duration, None when everything is kept."""
        return self.sqlite_retention_days * 86_400_000 if self.sqlite_retention_days else None


def on_this_host(url: str) -> bool:
    """Whether `url` names this host: a loopback host, or a name in the `.localhost` domain
    (reserved for loopback; only a compression choice rests on it, no security one)."""
    host = urlsplit(url).hostname or ""
    return is_loopback(host) or host.endswith(".localhost")
