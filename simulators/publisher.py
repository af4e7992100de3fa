"""The simulator's MQTT side: it is a device, so it has its own small paho publisher.

paho's network thread reconnects by itself after a lost connection, with exponential backoff
(`reconnect_min_s` doubling up to `reconnect_max_s`), and the client resends unacknowledged
QoS 1 messages. A tick's messages go out as a few writes (`facility.mqtt_client`), not one
paho call each: that is what lets one process publish 10,000 devices at 1 Hz. `suspend()` /
`resume()` drop and restore the connection on purpose (the broker-disconnect fault);
`resume()` retries with the same backoff until the broker answers.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from facility.mqtt_client import BulkClient
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
    port: int = 1883
    client_id: str = "facility-simulator"
    qos: int = 1
    protocol: str = "3.1.1"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    """CA bundle for TLS; None = the system's CAs."""
    max_inflight: int = 1000
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    resume_timeout_s: float = 120.0


class MqttPublisher:
    def __init__(self, settings: PublisherSettings) -> None:
        self.settings = settings
        self._client = BulkClient(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311,
        )
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self._client.tls_set(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(
            min_delay=max(1, round(settings.reconnect_min_s)),
            max_delay=max(1, round(settings.reconnect_max_s)),
        )
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self.connects = 0
        self.published = 0

    def _on_connect(self, *_args: Any) -> None:
        self.connects += 1
        self._connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def connect(self, timeout_s: float = 10.0) -> None:
        s = self.settings
        try:
            self._client.connect(s.host, s.port, keepalive=s.keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            raise PublishError(f"cannot reach MQTT broker {s.host}:{s.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            raise PublishError(f"MQTT broker {s.host}:{s.port} did not accept the connection")

    def publish(self, topic: str, payload: bytes) -> None:
        self.publish_many([(topic, payload)])

    def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Waits while `max_inflight` QoS 1 messages are unacknowledged, also while the broker
        is away (a device's buffer is full), up to `resume_timeout_s`."""
        s = self.settings
        try:
            self._client.publish_many(messages, s.qos, s.max_inflight, s.resume_timeout_s)
        except TimeoutError as exc:
            raise PublishError(f"MQTT broker {s.host}:{s.port}: {exc}") from exc
        self.published += len(messages)

    def flush(self, timeout_s: float) -> None:
        """Wait until the broker acknowledged everything published so far."""
        if not self._client.wait_acked(timeout_s):
            raise PublishError(
                f"the broker did not acknowledge {self._client.unacked()} messages in time"
            )

    def suspend(self) -> None:
        """Drop the connection on purpose (the broker-disconnect fault)."""
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        log.info("simulator: disconnected from the broker on purpose")

    def resume(self) -> None:
        """Reconnect after `suspend()`, with exponential backoff until the broker answers."""
        s = self.settings
        delay = s.reconnect_min_s
        deadline = time.monotonic() + s.resume_timeout_s
        while True:
            try:
                self._client.reconnect()
                break
            except (OSError, ssl.SSLError) as exc:
                if time.monotonic() + delay > deadline:
                    raise PublishError(f"cannot reconnect to {s.host}:{s.port}: {exc}") from exc
                log.warning("simulator: reconnect failed (%s); retrying in %.0f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, s.reconnect_max_s)
        self._client.loop_start()
        if not self._connected.wait(s.resume_timeout_s):
            raise PublishError(f"MQTT broker {s.host}:{s.port} did not accept the reconnection")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
