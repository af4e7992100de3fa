"""The one module that talks to paho-mqtt: a QoS 1 consumer with acks after durability.

One thread runs the connection: connect, run paho's network loop until the connection drops,
wait with exponential backoff and jitter, connect again (and resubscribe in on_connect, every
time). paho delivers messages on that thread; we only put them on a queue there. The gateway
worker takes them in receive order, makes them durable, then calls `ack`, which sends the
PUBACKs (paho's `manual_ack=True`), a run of them in one write. `facility.mqtt_client` is the
paho client with its per-message costs taken out. Messages received before a reconnect are
not acked on the new connection (their packet ids mean nothing there); the broker redelivers
them from the persistent session and the duplicates are harmless.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from facility.mqtt_client import BulkClient, PublishSink
from gateway.errors import MqttError

log = logging.getLogger(__name__)

MqttProtocol = Literal["5", "3.1.1"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "facility-gateway"
    protocol: MqttProtocol = "5"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 86400
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    shared_group: str | None = None
    """Consume through `$share/<group>/...` so several gateways split the stream."""


class InboundMessage(NamedTuple):
    """A tuple, not a frozen dataclass: one is made per message on the network thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    """Connection number the message arrived on; acks go only to the same connection."""


def _client(settings: MqttSettings, deliver: PublishSink) -> BulkClient:
    v5 = settings.protocol == "5"
    client = BulkClient(
        CallbackAPIVersion.VERSION2,
        deliver=deliver,
        client_id=settings.client_id,
        clean_session=None if v5 else False,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        manual_ack=True,
        reconnect_on_failure=False,  # our loop reconnects, with jitter
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
    return client


def _connect_properties(settings: MqttSettings) -> Properties | None:
    if settings.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.session_expiry_s
    return props


class MqttConsumer:
    """Subscribes at QoS 1 with a persistent session and hands messages out in batches."""

    def __init__(self, settings: MqttSettings, topic_filter: str) -> None:
        self.settings = settings
        self.topic_filter = (
            f"$share/{settings.shared_group}/{topic_filter}"
            if settings.shared_group
            else topic_filter
        )
        self._queue: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._generation = 0
        self._connected = threading.Event()
        self._client = _client(settings, self._on_publish)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message  # only QoS 2, which we never subscribe to
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-connection", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """The one reconnect loop: connect, serve, back off with jitter, again."""
        s = self.settings
        delay = float(s.reconnect_min_s)
        while not self._stop.is_set():
            try:
                self._client.connect(
                    s.host,
                    s.port,
                    keepalive=s.keepalive_s,
                    clean_start=False if s.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=_connect_properties(s),
                )
            except (OSError, ValueError) as exc:
                log.warning("MQTT broker %s:%s unreachable: %s", s.host, s.port, exc)
            else:
                connects_before = self.connects
                self._client.loop_forever()  # returns when the connection is lost or closed
                if self.connects > connects_before:
                    delay = float(s.reconnect_min_s)  # it was up: start backing off afresh
            if self._stop.is_set():
                break
            wait = delay * (0.5 + random.random())
            log.info("reconnecting to MQTT in %.1f s", wait)
            self._stop.wait(wait)
            delay = min(delay * 2, float(s.reconnect_max_s))

    def wait_connected(self, timeout_s: float) -> None:
        if not self._connected.wait(timeout_s):
            raise MqttError(
                f"no connection to MQTT broker {self.settings.host}:{self.settings.port} "
                f"within {timeout_s:g} s"
            )

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(10)

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
        generation = self._generation
        current = [m for m in messages if m.generation == generation]
        self._client.ack_many([m.mid for m in current if m.qos == 1])
        for message in current:
            if message.qos == 2:  # only if a broker ignored our subscription's QoS 1
                self._client.ack(message.mid, 2)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        self._generation += 1
        self.connects += 1
        client.subscribe(self.topic_filter, qos=1)
        log.info(
            "MQTT connected to %s:%s (session present: %s), subscribed to %s",
            self.settings.host,
            self.settings.port,
            flags.session_present,
            self.topic_filter,
        )
        self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected: %s", reason_code)

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self._queue.put(InboundMessage(topic, payload, mid, qos, self._generation))

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        self._on_publish(message.topic, bytes(message.payload), message.mid, message.qos)
