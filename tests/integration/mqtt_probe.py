"""An MQTT 5 test client that reports what the broker answered: the CONNACK, each PUBACK's
and SUBACK's reason code, or how the connection ended (a refused TLS handshake, a close).

Written on paho's public API directly, not on `mqtt/`: it is the stand-in for a device, which
runs none of this project's code, and it must show the broker's answers the project's own
client hides (a refused PUBACK is only counted there).
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

WAIT_S = 10.0


class Client:
    """One connection; every call returns the broker's reason code (or raises on timeout)."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 *, tls: tuple[Path, Path | None, Path | None] | None = None) -> None:  # fmt: skip
        self.port = port
        self._lock = threading.Condition()
        self.connack: ReasonCode | None = None
        self.closed = False
        self.pubacks: dict[int, ReasonCode] = {}
        self.received: list[tuple[str, bytes]] = []
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"identity-test-{username}-{time.monotonic_ns()}",
            protocol=paho.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls is not None:
            ca, cert, key = tls
            self._client.tls_set(
                ca_certs=str(ca),
                certfile=None if cert is None else str(cert),
                keyfile=None if key is None else str(key),
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self.subacks: list[ReasonCode] = []

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: object) -> None:  # fmt: skip
        with self._lock:
            self.connack = rc
            self._lock.notify_all()

    def _on_disconnect(self, _c: paho.Client, _u: object, _f: object, _rc: object,
                       _p: object) -> None:  # fmt: skip
        with self._lock:
            self.closed = True
            self._lock.notify_all()

    def _on_publish(self, _c: paho.Client, _u: object, mid: int, rc: ReasonCode,
                    _p: object) -> None:  # fmt: skip
        with self._lock:
            self.pubacks[mid] = rc
            self._lock.notify_all()

    def _on_subscribe(self, _c: paho.Client, _u: object, _mid: int, rcs: list[ReasonCode],
                      _p: object) -> None:  # fmt: skip
        with self._lock:
            self.subacks.extend(rcs)
            self._lock.notify_all()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload)))
            self._lock.notify_all()

    def connect(self) -> str:
        """ "accepted", or why not: the CONNACK's reason, or how the connection ended."""
        try:
            self._client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:  # e.g. the TLS handshake was refused
            return f"refused: {exc}"
        self._client.loop_start()
        with self._lock:
            self._lock.wait_for(lambda: self.connack is not None or self.closed, WAIT_S)
        if self.connack is None:
            return "closed" if self.closed else "no answer"
        return "accepted" if not self.connack.is_failure else f"CONNACK {self.connack}"

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            if not self._lock.wait_for(lambda: info.mid in self.pubacks, WAIT_S):
                raise AssertionError(f"no PUBACK for {topic} within {WAIT_S:g} s")
            return self.pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        self._client.subscribe(topic_filter, qos=1)
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self.subacks), WAIT_S):
                raise AssertionError(f"no SUBACK for {topic_filter}")
            return self.subacks[-1]

    def wait_received(self, count: int) -> list[tuple[str, bytes]]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.received) >= count, WAIT_S)
            return list(self.received)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
