"""The simulator's MQTT side: it is a device, so it only publishes.

The client comes from the transport package (`mqtt.make_client`, as the gateway's does): it
reconnects after a lost connection with the one reconnect policy (exponential backoff with
jitter, `reconnect_min_s` up to `reconnect_max_s`) and resends unacknowledged QoS 1 messages.
On the fast path a tick's messages go out as a few writes, not one paho call each: that is
what lets one process publish 10,000 devices at 1 Hz. `suspend()` / `resume()` drop and
restore the connection on purpose (the broker-disconnect fault).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from facility.errors import SettingsError
from mqtt import MqttError, MqttProtocol, PacketPath, check_options, make_client
from mqtt.interface import MAX_PACKET_IDS
from simulators.errors import PublishError

__all__ = [
    "MemoryPublisher",
    "MqttPublisher",
    "PublishError",
    "Published",
    "Publisher",
    "PublisherSettings",
]  # fmt: skip
log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...

    def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """A tick's messages, in order; an MQTT publisher writes them in a few writes."""

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class Published(NamedTuple):
    """One message as published: unpacks as (topic, payload), and is what the gateway's
    decoder takes (it has `.topic` and `.payload`)."""

    topic: str
    payload: bytes


class MemoryPublisher:
    """Keeps what is published, in order: for tests, benchmarks and tools without a broker."""

    def __init__(self) -> None:
        self.messages: list[Published] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append(Published(topic, payload))

    def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self.messages.extend(Published(topic, payload) for topic, payload in messages)

    def flush(self, timeout_s: float) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherSettings:
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = 1883
    """Broker port (8883 is the usual one for TLS)."""
    client_id: str = "facility-simulator"
    """Client id of the simulator's connection."""
    qos: int = 1
    """QoS of every message: 1 (kept until the broker acknowledged it) or 0."""
    protocol: MqttProtocol = "3.1.1"
    """MQTT protocol version: "5" or "3.1.1"."""
    username: str | None = None
    """User name for the broker; None = connect without credentials."""
    password: str | None = None
    """Password for `username`."""
    tls: bool = False
    """Connect with TLS, checking the broker's certificate."""
    ca_file: str | None = None
    """CA bundle for TLS; None = the system's CAs."""
    cert_file: str | None = None
    """Client certificate (PEM) for mutual TLS; None = none."""
    key_file: str | None = None
    """Private key of `cert_file`; None = it is in `cert_file`."""
    max_inflight: int = 1000
    """QoS 1 messages unacknowledged at most (a device's buffer); publishing waits for room."""
    keepalive_s: int = 30
    """Seconds between pings on a quiet connection."""
    reconnect_min_s: float = 1.0
    """First wait before reconnecting; doubles per failed attempt, with jitter."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnect attempts."""
    resume_timeout_s: float = 120.0
    """How long publishing waits for room, and resume() for the broker, before giving up."""
    packet_path: PacketPath = "auto"
    """MQTT client internals: "fast" (bulk writes over paho 2.2.0's private methods),
    "plain" (paho's public API), "auto" = fast on the paho release it was written for."""

    def __post_init__(self) -> None:
        check_options(self)
        if self.qos not in (0, 1):
            raise SettingsError("qos", f"must be 0 or 1, not {self.qos}")
        if not 1 <= self.max_inflight <= MAX_PACKET_IDS:
            raise SettingsError("max-inflight", f"must be 1..{MAX_PACKET_IDS}")
        if self.resume_timeout_s <= 0:
            raise SettingsError("resume-timeout-s", "must be more than 0")


class MqttPublisher:
    def __init__(self, settings: PublisherSettings) -> None:
        self.settings = settings
        self._client = make_client(settings)
        self.published = 0

    @property
    def connects(self) -> int:
        return self._client.generation

    @property
    def connected(self) -> bool:
        return self._client.connected

    @property
    def path(self) -> str:
        """The packet path the client took: "fast" or "plain"."""
        return self._client.path

    def connect(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect(timeout_s)
        except MqttError as exc:
            raise PublishError(str(exc)) from exc

    def publish(self, topic: str, payload: bytes) -> None:
        self.publish_many([(topic, payload)])

    def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Waits while `max_inflight` QoS 1 messages are unacknowledged, also while the broker
        is away (a device's buffer is full), up to `resume_timeout_s`."""
        s = self.settings
        try:
            self._client.publish_many(messages, s.qos, s.max_inflight, s.resume_timeout_s)
        except MqttError as exc:
            raise PublishError(str(exc)) from exc
        self.published += len(messages)

    def flush(self, timeout_s: float) -> None:
        """Wait until the broker acknowledged everything published so far."""
        if not self._client.wait_acked(timeout_s):
            raise PublishError(
                f"the broker did not acknowledge {self._client.unacked()} messages in time"
            )

    def suspend(self) -> None:
        """Drop the connection on purpose (the broker-disconnect fault)."""
        self._client.pause()
        log.info("simulator: disconnected from the broker on purpose")

    def resume(self) -> None:
        """Reconnect after `suspend()`; PublishError if the broker did not take us back within
        `resume_timeout_s` (the client keeps trying with backoff until then)."""
        self._client.resume()
        if not self._client.wait_connected(self.settings.resume_timeout_s):
            s = self.settings
            raise PublishError(f"MQTT broker {s.host}:{s.port} did not accept the reconnection")

    def close(self) -> None:
        self._client.stop()
