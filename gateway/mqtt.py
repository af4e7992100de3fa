"""The gateway's MQTT side: a QoS 1 consumer with acks after durability.

The client comes from the transport package (`mqtt.make_client`): a persistent session with a
fixed client id, resubscribed on every connect, reconnected with backoff and jitter. It
delivers messages on paho's thread; here they are only put on a queue. The gateway worker
takes them in receive order, makes them durable, then calls `ack`, which sends the PUBACKs
(paho's `manual_ack=True`), a run of them in one write on the fast path. Messages received
before a reconnect are not acked on the new connection (their packet ids mean nothing there);
the broker redelivers them from the persistent session and the duplicates are harmless.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from facility.errors import SettingsError
from mqtt import MqttProtocol, MqttTimeoutError, PacketPath, check_options, make_client

__all__ = ["InboundMessage", "MqttConsumer", "MqttSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = 1883
    """Broker port (8883 is the usual one for TLS)."""
    client_id: str = "facility-gateway"
    """Fixed client id: the broker keeps this session, and queues for it, while away."""
    protocol: MqttProtocol = "5"
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
    keepalive_s: int = 30
    """Seconds between pings on a quiet connection."""
    session_expiry_s: int = 86400
    """MQTT 5: how long the broker keeps the session (and queues) after a disconnect."""
    reconnect_min_s: float = 1.0
    """First wait before reconnecting; doubles per failed attempt, with jitter."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnect attempts."""
    shared_group: str | None = None
    """Consume through `$share/<group>/...` so several gateways split the stream."""
    packet_path: PacketPath = "auto"
    """MQTT client internals: "fast" (bulk reads and acks over paho 2.2.0's private methods),
    "plain" (paho's public API), "auto" = fast on the paho release it was written for."""

    def __post_init__(self) -> None:
        check_options(self)
        if self.session_expiry_s < 0:
            raise SettingsError("session-expiry-s", "must not be negative")


class InboundMessage(NamedTuple):
    """A tuple, not a frozen dataclass: one is made per message on the network thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    """Connection number the message arrived on; acks go only to the same connection."""


class MqttConsumer:
    """Subscribes at QoS 1 with a persistent session and hands messages out in batches."""

    def __init__(
        self,
        settings: MqttSettings,
        topic_filter: str | Sequence[str],
        *,
        may_reconnect: Callable[[], bool] | None = None,
    ) -> None:
        """`topic_filter`: one filter or several (a shard's); `may_reconnect`: asked before
        each reconnection (a standby gateway's fence, `gateway.leadership`)."""
        self.settings = settings
        filters = (topic_filter,) if isinstance(topic_filter, str) else tuple(topic_filter)
        self.topic_filters = tuple(
            f"$share/{settings.shared_group}/{f}" if settings.shared_group else f for f in filters
        )
        self.topic_filter = ", ".join(self.topic_filters)
        self._queue: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._client = make_client(
            settings,
            deliver=self._on_publish,
            subscriptions=self.topic_filters,
            session_expiry_s=settings.session_expiry_s,
            may_reconnect=may_reconnect,
        )

    @property
    def connected(self) -> bool:
        return self._client.connected

    @property
    def connects(self) -> int:
        return self._client.generation

    @property
    def refused_reconnects(self) -> int:
        """Reconnections `may_reconnect` refused (a stale shard leader kept away)."""
        return self._client.refused_reconnects

    @property
    def path(self) -> str:
        """The packet path the client took: "fast" or "plain"."""
        return self._client.path

    def start(self) -> None:
        self._client.start()

    def wait_connected(self, timeout_s: float) -> None:
        if not self._client.wait_connected(timeout_s):
            raise MqttTimeoutError(
                f"no connection to MQTT broker {self.settings.host}:{self.settings.port} "
                f"within {timeout_s:g} s"
            )

    def stop(self) -> None:
        self._client.stop()

    def drop_pending(self) -> int:
        """Forget the messages received but not taken (a term ended: the broker sends them
        to the next leader); how many."""
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return dropped
            dropped += 1

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        """Up to `max_messages` (and about `max_bytes` of payload, 0 = no cap), waiting at most
        `timeout_s` for the first one."""
        out: list[InboundMessage] = []
        size = 0
        deadline = time.monotonic() + timeout_s
        while len(out) < max_messages and not (max_bytes and size >= max_bytes):
            remaining = deadline - time.monotonic()
            try:
                message = (
                    self._queue.get(timeout=max(remaining, 0.0))
                    if not out
                    else self._queue.get_nowait()
                )
                out.append(message)
                size += len(message.payload)
            except queue.Empty:
                if out or remaining <= 0:
                    break
        return out

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        """Acknowledge, in receive order, messages that are now durable."""
        generation = self._client.generation
        current = [m for m in messages if m.generation == generation]
        self._client.ack_many([m.mid for m in current if m.qos == 1], generation)
        # QoS 2 only if a broker ignored our subscription's QoS 1
        self._client.ack_many([m.mid for m in current if m.qos == 2], generation, qos=2)

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self._queue.put(InboundMessage(topic, payload, mid, qos, self._client.generation))
