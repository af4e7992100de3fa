"""The settings tree: every section, the dataclass that declares it, and who reads it.

A section is one TOML table (`[mqtt]`), one env prefix (`FACILITY_MQTT_*`) and one frozen
dataclass. Component packages own the dataclasses of their own tunables (ApiSettings,
PipelineSettings, ...); the few that only say how the processes are put together live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alerts.maintenance.settings import MaintenanceSettings
from alerts.notify.relay import RelaySettings
from api.settings import ApiSettings
from facility.errors import SettingsError
from gateway.decoder import DecoderLimits
from gateway.leadership import ShardSettings
from gateway.pipeline import PipelineSettings
from ingest.delivery import DeliverySettings
from ingest.settings import StoreSettings
from runtime.settings.options import Option, options_of

DEFAULT_SITE = Path("sites/shangri-la.toml")


def _port(name: str, port: int, *, zero_ok: bool = False) -> None:
    if not (0 if zero_ok else 1) <= port < 65536:
        off = ", 0 = off" if zero_ok else ""
        raise SettingsError(name, f"{port} is not a port number (1-65535{off})")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """How much the process logs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSettings:
    file: Path = DEFAULT_SITE
    """The site file (TOML): buildings, units, devices, parameters."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseSettings:
    url: str = "sqlite:///var/facility.sqlite3"
    """Work orders, users and notifications: `sqlite:///FILE` or `postgresql://...`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """The broker connection, shared by the gateway and the simulator."""

    host: str = "127.0.0.1"
    """MQTT broker host."""
    port: int = 1883
    """MQTT broker port."""
    username: str | None = None
    """MQTT username (with a password: the broker's password file)."""
    password: str | None = None
    """MQTT password."""
    tls: bool = False
    """Connect to the broker with TLS."""
    ca_file: Path | None = None
    """CA bundle for TLS (default: the system's CAs)."""
    cert_file: Path | None = None
    """Client certificate (PEM) for brokers that require one (mutual TLS); with TLS only."""
    key_file: Path | None = None
    """Private key of cert_file (PEM; default: the key is in cert_file)."""
    keepalive_s: int = 30
    """MQTT keepalive."""
    reconnect_min_s: float = 1.0
    """First wait before reconnecting; doubles (with jitter) up to the max."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnect attempts."""
    packet_path: Literal["auto", "fast", "plain"] = "auto"
    """auto: the fast packet path on the paho release it was written for, else plain paho (logged);
    fast: refuse to start on another release; plain: always paho's own."""

    def connection(self) -> dict[str, Any]:
        """The keyword arguments both MQTT clients (consumer, publisher) take for the broker."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "tls": self.tls,
            "ca_file": None if self.ca_file is None else str(self.ca_file),
            "cert_file": None if self.cert_file is None else str(self.cert_file),
            "key_file": None if self.key_file is None else str(self.key_file),
            "keepalive_s": self.keepalive_s,
            "reconnect_min_s": self.reconnect_min_s,
            "reconnect_max_s": self.reconnect_max_s,
            "packet_path": self.packet_path,
        }

    def __post_init__(self) -> None:
        _port("mqtt-port", self.port)
        if self.keepalive_s < 1:
            raise SettingsError("mqtt-keepalive-s", "must be at least 1")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise SettingsError(
                "mqtt-reconnect-min-s", "must be more than 0 and at most mqtt-reconnect-max-s"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    client_id: str = "facility-gateway"
    """MQTT client id; fixed, so the broker keeps the session (and queues) across restarts."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT protocol version."""
    session_expiry_s: int = 86400
    """MQTT 5 session expiry: how long the broker queues for a gateway that is away."""
    shared_group: str | None = None
    """Consume through `$share/<group>/...` together with other gateways."""
    rules: Path | None = None
    """Rule file (default: the built-in rule pack)."""
    rules_state: Path = Path("var/rules-state.npz")
    """The rules engine's checkpoint (windows, timers, open episodes)."""
    rules_tick_s: float = 1.0
    """How often the rules run without new data (silence is seen with nothing arriving)."""
    rules_checkpoint_s: float = 10.0
    """How often the rules engine's state is checkpointed."""
    alerts_config: Path | None = None
    """Alerts settings file: work-order policy, escalation, notifications."""
    dead_letters: Path = Path("var/dead-letters.jsonl")
    """Where rejected messages are kept, with their reason."""
    spool_dir: Path = Path("var/spool")
    """On-disk spool for store outages (one gateway process per directory)."""
    spool_max_bytes: int = 1 << 30
    """Spool cap in bytes on disk (compressed; ~15-25 bytes a reading): see spool-when-full."""
    spool_segment_bytes: int = 4 << 20
    """The spool appends batches to a segment file until it holds this many bytes (at most a
    quarter of the cap); a drained segment is deleted."""
    spool_when_full: Literal["block", "drop-oldest"] = "block"
    """At the cap: block stops acking (the broker holds the stream, up to its own queue
    limits) and drops nothing; drop-oldest deletes the oldest segment (counted) and acks on."""
    metrics_host: str = "127.0.0.1"
    """Address of /metrics and /health."""
    metrics_port: int = 9108
    """Port of /metrics and /health (0 = off)."""
    broker_stats: bool = True
    """Read the broker's broker-wide $SYS figures (Mosquitto: stored messages and bytes,
    disconnected persistent sessions, dropped messages) into /metrics, on a second connection
    `<client id>-sys`; the gateway's account needs read access to $SYS/broker/#."""

    def __post_init__(self) -> None:
        _port("metrics-port", self.metrics_port, zero_ok=True)
        if self.session_expiry_s < 0:
            raise SettingsError("session-expiry-s", "must not be negative")
        if self.spool_max_bytes < 1 << 16:
            raise SettingsError("spool-max-bytes", "must be at least 64 KiB (65536)")
        if self.spool_segment_bytes < 4096:
            raise SettingsError("spool-segment-bytes", "must be at least 4 KiB (4096)")
        for name in ("rules_tick_s", "rules_checkpoint_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(name.replace("_", "-"), "must be more than 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    host: str = "127.0.0.1"
    """Listen address of the API and dashboard."""
    port: int = 8000
    """Listen port of the API and dashboard."""
    graceful_shutdown_s: float = 3.0
    """How long open requests (and live-update streams) get to finish at stop."""

    def __post_init__(self) -> None:
        _port("port", self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulateSettings:
    rate_hz: float = 1.0
    """Readings per device per simulated second."""
    speed: float = 1.0
    """Simulated seconds per wall second (0 = as fast as the broker takes it)."""
    seed: int = 0
    """Random seed: the same seed gives the same payloads."""
    batch: int = 1
    """Readings per message (1 = one reading per message)."""
    duration_s: float | None = None
    """Simulated seconds to run (default: forever)."""
    start_ms: int | None = None
    """Simulated start time, ms since the epoch."""
    inject: tuple[str, ...] = ()
    """Faults to inject, e.g. pump-dry-run:pump-1@10+120 (docs/simulators.md lists them)."""
    scenario: Path | None = None
    """Inject the faults of this scenario file."""
    ledger: Path | None = None
    """Write the injected faults to this JSONL file."""
    devices: int = 0
    """Simulate a generated portfolio of N devices instead of the site file."""
    write_site: Path | None = None
    """With devices: write the generated site file here."""
    client_id: str = "facility-simulator"
    """The simulator's MQTT client id."""
    protocol: Literal["5", "3.1.1"] = "3.1.1"
    """The simulator's MQTT protocol version."""
    qos: Literal["0", "1"] = "1"
    """MQTT QoS of the published telemetry."""
    live: bool | None = None
    """Live terminal view on stderr (default: when stderr is a terminal)."""

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise SettingsError("rate", "must be more than 0 readings per second")
        if self.speed < 0:
            raise SettingsError("speed", "must not be negative")
        if self.batch < 1:
            raise SettingsError("batch", "must be at least 1 reading per message")
        if self.duration_s is not None and self.duration_s < 0:
            raise SettingsError("duration", "must not be negative")
        if self.devices < 0:
            raise SettingsError("devices", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSettings:
    var_dir: Path = Path("var")
    """Where `facility up` keeps its embedded stores."""
    broker_port: int = 11883
    """Port of the embedded MQTT broker of `facility up`."""
    password: str | None = field(default=None, repr=False)
    """Password of the demo logins (default: a new random one per login, printed)."""

    def __post_init__(self) -> None:
        _port("mqtt-port", self.broker_port)


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    settings_type: type
    prefix: str | None
    """Flag prefix: `--{prefix}-{field}`; None: `--{field}`."""
    flags: Mapping[str, str] = field(default_factory=dict)
    """Fields whose flag is another (the README's long-standing names)."""

    @property
    def options(self) -> tuple[Option, ...]:
        return options_of(self.name, self.settings_type, prefix=self.prefix, flags=self.flags)


MQTT_CLIENT_FLAGS: Mapping[str, str] = {"client_id": "mqtt-client-id", "protocol": "mqtt-protocol"}
"""The gateway's and the simulator's own MQTT identity (no command reads both)."""

SECTIONS: Mapping[str, Section] = {
    s.name: s
    for s in (
        Section("log", LogSettings, "log"),
        Section("site", SiteSettings, None, {"file": "site"}),
        Section("db", DatabaseSettings, "db"),
        Section("mqtt", MqttSettings, "mqtt"),
        Section("gateway", GatewaySettings, None, MQTT_CLIENT_FLAGS),
        Section("shard", ShardSettings, "shard", {"name": "shard", "standby": "standby"}),
        Section("decoder", DecoderLimits, None),
        Section("pipeline", PipelineSettings, "pipeline"),
        Section("delivery", DeliverySettings, "delivery"),
        Section("store", StoreSettings, None, {"kind": "store"}),
        Section("notify", RelaySettings, "notify"),
        Section("api", ApiSettings, "api"),
        Section("http", HttpSettings, None),
        Section("maintenance", MaintenanceSettings, "maintenance"),
        Section(
            "simulate",
            SimulateSettings,
            None,
            {"rate_hz": "rate", "duration_s": "duration", **MQTT_CLIENT_FLAGS},
        ),
        Section(
            "demo", DemoSettings, None, {"broker_port": "mqtt-port", "password": "demo-password"}
        ),
    )
}

COMMAND_SECTIONS: Mapping[str, tuple[str, ...]] = {
    "gateway": ("log", "site", "db", "mqtt", "gateway", "shard", "decoder", "pipeline",
                "delivery", "store", "notify"),
    "api": ("log", "site", "db", "store", "api", "http", "maintenance"),
    "simulate": ("log", "site", "mqtt", "simulate"),
    "up": ("log", "site", "demo", "http", "api", "simulate", "gateway", "decoder", "pipeline",
           "delivery", "notify", "maintenance"),
    "backtest": ("log", "site", "store"),
    "db": ("log", "db"),
    "users": ("log", "site", "db"),  # the site checks a steward's buildings
    "devices": ("log", "site"),  # MQTT credentials and certificates of the site's devices
    "mqtt": ("log", "mqtt", "gateway"),  # the broker's sessions (forget-session)
    "qr": ("log", "site", "api"),  # the units' and buildings' QR codes, as the server makes them
    "report": ("log", "site", "db", "maintenance"),  # the owners' meeting report (its plans)
}  # fmt: skip
"""Which sections each command reads (and so which flags it takes)."""

UP_SKIPS: frozenset[str] = frozenset(
    {"simulate.devices", "simulate.write_site", "simulate.client_id", "simulate.protocol",
     "simulate.duration_s", "simulate.start_ms", "simulate.qos", "simulate.live",
     "gateway.client_id", "gateway.protocol", "gateway.session_expiry_s", "gateway.shared_group",
     "gateway.rules_state", "gateway.dead_letters", "gateway.spool_dir",
     "gateway.broker_stats"}
)  # fmt: skip
"""Options `facility up` fixes itself (one embedded broker, the demo's own client ids)."""
