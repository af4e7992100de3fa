"""The transport's contracts: what a settings object gives the factory, and what a packet path
(fast.py, plain.py) must do on top of paho's client.

A packet path is a paho client that hands every received PUBLISH to one callable as
`(topic, payload, packet id, qos)`, acks QoS 1 messages only when told (after the gateway made
them durable), and publishes runs of messages with at most `max_inflight` unacknowledged,
keeping QoS 1 ones until the broker acknowledged them and resending them, in order, after a
reconnect. `MqttClient` (client.py) keeps either one connected; nothing above this package
touches paho.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, Protocol

import paho.mqtt.client as paho

from facility.errors import SettingsError

PathName = Literal["fast", "plain"]
PacketPath = Literal["auto", "fast", "plain"]
"""The setting: "auto" takes the fast path on the paho release it was written against."""
MqttProtocol = Literal["5", "3.1.1"]
PublishSink = Callable[[str, bytes, int, int], None]
"""Receives (topic, payload, packet id, qos) for each PUBLISH, on paho's network thread."""
MAX_PACKET_IDS = 65_535


class ClientOptions(Protocol):
    """The settings a client is built from (gateway.mqtt.MqttSettings and
    simulators.publisher.PublisherSettings have them all)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def client_id(self) -> str: ...
    @property
    def protocol(self) -> MqttProtocol: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def tls(self) -> bool: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def cert_file(self) -> str | None: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def keepalive_s(self) -> int: ...
    @property
    def reconnect_min_s(self) -> float: ...
    @property
    def reconnect_max_s(self) -> float: ...
    @property
    def packet_path(self) -> PacketPath: ...


def check_options(options: ClientOptions) -> None:
    """The checks every settings object with these fields runs in its `__post_init__`."""
    if not 1 <= options.port <= MAX_PACKET_IDS:
        raise SettingsError("port", f"must be 1..65535, not {options.port}")
    if options.protocol not in ("5", "3.1.1"):
        raise SettingsError("protocol", f'must be "5" or "3.1.1", not {options.protocol!r}')
    if not options.client_id:
        raise SettingsError("client-id", "must not be empty")
    if options.keepalive_s < 1:
        raise SettingsError("keepalive-s", "must be at least 1")
    if options.reconnect_min_s <= 0:
        raise SettingsError("reconnect-min-s", "must be more than 0")
    if options.reconnect_max_s < options.reconnect_min_s:
        raise SettingsError("reconnect-max-s", "must not be less than reconnect-min-s")
    if options.packet_path not in ("auto", "fast", "plain"):
        raise SettingsError(
            "packet-path", f'must be "auto", "fast" or "plain", not {options.packet_path!r}'
        )
    if options.ca_file is not None and not options.tls:
        raise SettingsError("ca-file", "is used only with tls")
    if options.cert_file is not None and not options.tls:
        raise SettingsError("cert-file", "is used only with tls")
    if options.key_file is not None and options.cert_file is None:
        raise SettingsError("key-file", "is used only with cert-file")


def ignore(topic: str, payload: bytes, mid: int, qos: int) -> None:
    """A publisher subscribes to nothing."""


class PathClient(paho.Client, abc.ABC):
    """paho's client plus what a packet path adds; fast.py and plain.py implement it."""

    name: ClassVar[PathName]

    def __init__(self, *args: Any, deliver: PublishSink = ignore, **kwargs: Any) -> None:
        self.deliver = deliver
        self.refused = 0
        """QoS 1 messages the broker acknowledged with an error reason (MQTT 5), so dropped."""
        super().__init__(*args, **kwargs)
        self.on_message = self._paho_message

    def _paho_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        """A message that went through paho's own reader (every one on the plain path)."""
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "\ufffd"  # not UTF-8: the decoder rejects it as a bad topic
        self.deliver(topic, bytes(msg.payload), msg.mid, msg.qos)

    def link_up(self) -> None:
        """On paho's thread, after a CONNACK that accepted us (before paho resends)."""

    def link_down(self) -> None:
        """On paho's thread, when the connection is gone."""

    @abc.abstractmethod
    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 packet ids, in this order."""

    @abc.abstractmethod
    def publish_many(
        self, messages: Sequence[tuple[str, bytes]], qos: int, max_inflight: int, timeout_s: float
    ) -> None:
        """Publish in order, with at most `max_inflight` unacknowledged, connected or not;
        TimeoutError when no room came within `timeout_s`. QoS 0 is dropped while away."""

    @abc.abstractmethod
    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until every QoS 1 message of `publish_many` is acknowledged."""

    @abc.abstractmethod
    def unacked(self) -> int:
        """Messages of `publish_many` not yet acknowledged (or not yet sent)."""


def check_publish_args(qos: int, max_inflight: int) -> None:
    if qos not in (0, 1):
        raise ValueError(f"publish_many sends QoS 0 or 1, not {qos}")
    if not 1 <= max_inflight <= MAX_PACKET_IDS:
        raise ValueError(f"max_inflight must be 1..{MAX_PACKET_IDS}, not {max_inflight}")
