"""The simulator's MQTT side: it is a device, so it has its own small paho publisher."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from facility.errors import FacilityError


class PublishError(FacilityError):
    pass


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "facility-simulator"
    qos: int = 1
    protocol: str = "3.1.1"
    username: str | None = None
    password: str | None = None
    max_inflight: int = 1000


class MqttPublisher:
    def __init__(self, settings: PublisherSettings) -> None:
        self.settings = settings
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311,
        )
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.max_inflight_messages_set(settings.max_inflight)
        self._client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self._client.on_connect = lambda *_args: self._connected.set()
        self._pending: list[paho.MQTTMessageInfo] = []

    def connect(self, timeout_s: float = 10.0) -> None:
        s = self.settings
        try:
            self._client.connect(s.host, s.port, keepalive=30)
        except OSError as exc:
            raise PublishError(f"cannot reach MQTT broker {s.host}:{s.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            raise PublishError(f"MQTT broker {s.host}:{s.port} did not accept the connection")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=self.settings.qos)
        self._pending.append(info)
        if len(self._pending) >= 10_000:
            self._pending = [i for i in self._pending if not i.is_published()]

    def flush(self, timeout_s: float) -> None:
        """Wait until the broker acknowledged everything published so far."""
        for info in self._pending:
            info.wait_for_publish(timeout_s)
            if not info.is_published():
                raise PublishError("the broker did not acknowledge every message in time")
        self._pending.clear()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
