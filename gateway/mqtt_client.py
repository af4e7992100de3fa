"""paho-mqtt's client with its per-message costs taken out of the receive path.

paho keeps the connection, the session and the keepalive; three of its per-packet habits cost
the gateway more than everything else it does with a one-reading message (measured on 60k
queued QoS 1 messages, consumer alone: 8.6k/s with MQTT 5 and 12.4k/s with 3.1.1 before, about
67k/s for both after, which is what Mosquitto itself drains):

- it reads each packet with three or four `recv` calls after a `select`; here the socket is read
  in 256 KiB chunks and the packets are cut from that buffer, several per `select`;
- it builds an `MQTTMessage` (and for MQTT 5 a `Properties` object) per PUBLISH and matches
  the topic against its callback filters; here a PUBLISH is parsed in place and handed to one
  callable as `(topic, payload, packet id, qos)`;
- it writes one PUBACK per `ack` call, each with a wake-up byte for the network loop; here a
  run of PUBACKs goes out as one packet.

This relies on paho's private methods (`_sock_recv`, `_packet_read`, `_handle_publish`,
`_packet_queue`), so pyproject pins paho-mqtt to the 2.x releases it was checked against, and
the consumer's integration tests run it against a real Mosquitto.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes

PublishSink = Callable[[str, bytes, int, int], None]
"""Receives (topic, payload, packet id, qos) for each PUBLISH, on the network thread."""

READ_CHUNK = 1 << 18
FILLS_PER_SELECT = 4
"""Chunks read before the network loop gets a turn (keepalive, writes), at a packet boundary."""

_PUBACK = PacketTypes.PUBACK << 4


class MalformedPublishError(MalformedPacket):
    """A PUBLISH shorter than its own lengths say; paho drops the connection on it."""


class BulkClient(paho.Client):
    """A paho client that reads in bulk and delivers PUBLISH packets without objects."""

    def __init__(self, *args: Any, deliver: PublishSink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver
        self._read_buffer = b""
        self._read_pos = 0
        self._fills = 0

    # -- reading -------------------------------------------------------------------------

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_pos >= len(self._read_buffer):
            if self._fills >= FILLS_PER_SELECT and self._in_packet["command"] == 0:
                raise BlockingIOError  # let the loop breathe; select wakes it again at once
            data = super()._sock_recv(READ_CHUNK)
            self._fills += 1
            if not data:
                return data  # the peer closed the connection
            self._read_buffer, self._read_pos = data, 0
        start = self._read_pos
        chunk = self._read_buffer[start : start + bufsize]
        self._read_pos = start + len(chunk)
        return chunk

    def _buffered(self) -> bool:
        return self._read_pos < len(self._read_buffer)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle every packet already read, and what the socket holds, up to a few chunks.

        It must not return while the buffer holds data: the loop's `select` would not see it.
        """
        self._fills = 0
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if not self._buffered() and (
                rc == MQTTErrorCode.MQTT_ERR_AGAIN or self._in_packet["command"] == 0
            ):
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        self._read_buffer, self._read_pos = b"", 0  # what is left belongs to a dead connection
        super()._sock_close()

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if qos == 2:
            return super()._handle_publish()  # not subscribed at QoS 2; paho's path handles it
        packet = self._in_packet["packet"]
        try:
            topic, mid, payload = _parse_publish(
                packet, qos, v5=self._protocol == MQTTProtocolVersion.MQTTv5
            )
        except IndexError as exc:
            raise MalformedPublishError(f"truncated PUBLISH ({len(packet)} bytes)") from exc
        self._deliver(topic, payload, mid, qos)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- acknowledging -------------------------------------------------------------------

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 packet ids, in this order, as one write."""
        if not mids:
            return
        ids = np.asarray(mids, dtype=np.uint16)
        packets = np.empty((len(ids), 4), dtype=np.uint8)
        packets[:, 0] = _PUBACK
        packets[:, 1] = 2  # remaining length: the id; MQTT 5 reads that as reason "success"
        packets[:, 2] = ids >> 8
        packets[:, 3] = ids & 0xFF
        self._packet_queue(_PUBACK, packets.tobytes(), 0, 1)


def _parse_publish(packet: bytearray, qos: int, *, v5: bool) -> tuple[str, int, bytes]:
    """Topic, packet id and payload of a PUBLISH body; MQTT 5 properties are skipped."""
    end = 2 + ((packet[0] << 8) | packet[1])
    if end > len(packet):
        raise IndexError(end)
    topic = packet[2:end].decode("utf-8", "replace")  # a bad topic is rejected downstream
    mid = 0
    if qos:
        mid = (packet[end] << 8) | packet[end + 1]
        end += 2
    if v5:
        length, shift = 0, 0
        while True:
            byte = packet[end]
            end += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        end += length
        if end > len(packet):
            raise IndexError(end)
    return topic, mid, bytes(packet[end:])
