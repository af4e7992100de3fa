"""The fast packet path: paho-mqtt's client with its per-message costs taken out.

paho keeps the connection, the session, keepalive and reconnects. Its per-packet habits cost the
gateway more than everything else it does with a one-reading message (60k queued QoS 1
messages, consumer alone: 8.6k/s with MQTT 5 and 12.4k/s with 3.1.1 with plain paho, 180-200k/s
for both here; Mosquitto's own `mosquitto_sub` drains 65-78k/s):

- it reads each packet with three or four `recv` calls after a `select`; here the socket is read
  in 256 KiB chunks and whole packets are cut from that buffer in one loop (runs of PUBLISH
  packets in C, `mqtt/_publishes.c`, where the package was built with a C compiler);
- it builds an `MQTTMessage` (and for MQTT 5 a `Properties` object) per PUBLISH and matches
  the topic against its callback filters; here a PUBLISH is parsed in place and handed to one
  callable as `(topic, payload, packet id, qos)`;
- it writes one PUBACK per `ack`, and one PUBLISH per `publish`, each with a wake-up byte for
  the network loop; here a run of them goes out as one write (`ack_many`, `publish_many`).

This overrides paho's private methods and writes its `_in_packet` dict by shape, so
pyproject pins paho-mqtt to the release it was written against; guard.py records every private
name used here with its signature, a test fails when one changes, and on any other paho the
factory takes the plain path instead. tests/unit/test_mqtt_client.py cuts packets everywhere
and the integration tests run both paths against a real Mosquitto.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

from mqtt.errors import MqttProtocolError
from mqtt.interface import PathClient, PathName, check_publish_args
from mqtt.packets import PUBACK, PUBLISH, parse_publish, publish_packet, varint

_Publishes = Callable[[bytes, int, bool], tuple[list[tuple[str, bytes, int, int]], int]]
_publishes: _Publishes | None
try:
    from mqtt._publishes import publishes as _publishes
except ImportError:  # built without a C compiler: every packet through the loop
    _publishes = None

COMPILED = _publishes is not None
"""Whether runs of PUBLISH packets are cut in C (`mqtt/_publishes.c` built at install)."""

READ_CHUNK = 1 << 18
FILLS_PER_SELECT = 4
"""Chunks read before the network loop gets a turn (keepalive, writes), at a packet boundary."""

log = logging.getLogger(__name__)


class MalformedPublishError(MqttProtocolError, MalformedPacket):
    """A PUBLISH shorter than its own lengths say; paho drops the connection on it."""


class FastClient(PathClient):
    """A paho client that reads in bulk, delivers PUBLISH packets without objects, and
    publishes runs of messages as one write."""

    name: ClassVar[PathName] = "fast"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._read_buffer = b""
        self._read_pos = 0
        self._fills = 0
        self._unacked: dict[int, tuple[bytes, bool]] = {}
        """QoS 1 packets of `publish_many` not yet acknowledged, in publish order, and whether
        each went out (a resend marks only those DUP)."""
        self._unacked_changed = threading.Condition()
        self._write_lock = threading.Lock()
        self._sending = False
        """Connected, and our unacked messages resent: new ones may go out behind them."""
        super().__init__(*args, **kwargs)  # last: paho may close a socket in there

    def loop_start(self) -> MQTTErrorCode:
        """paho's `loop_start` makes a wake-up socket pair without closing the one an earlier
        `loop_start` made; close it here, or each suspend / resume leaks two sockets."""
        if self._thread is None:
            self._reset_sockets(sockpair_only=True)
        return super().loop_start()

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

        Whole packets in the buffer are cut out here; a packet cut by the end of a chunk goes
        through paho's own reader, which finishes it from the next chunk. This must not return
        while the buffer holds data: the loop's `select` would not see it.
        """
        self._fills = 0
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if self._in_packet["command"] == 0 and self._buffered():
                rc = self._whole_packets()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()  # the rest of a cut packet, or the next chunk
            if rc > 0:
                return self._loop_rc_handle(rc)
            if not self._buffered() and (
                rc == MQTTErrorCode.MQTT_ERR_AGAIN or self._in_packet["command"] == 0
            ):
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _whole_packets(self) -> MQTTErrorCode:
        """Deliver the complete packets at the front of the buffer; stop at a cut one.

        Runs of whole QoS 0/1 PUBLISH packets are cut in C where it is built
        (`mqtt/_publishes.c`); the packet that ends a run (anything else, or a cut or
        malformed one) goes through the loop below as before."""
        buffer = self._read_buffer
        pos, end = self._read_pos, len(buffer)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while pos < end:
            if _publishes is not None:
                run, pos = _publishes(buffer, pos, v5)
                received = self._received
                for topic, payload, mid, qos in run:
                    received(topic, payload, mid, qos)
                if pos >= end:
                    break
            header = buffer[pos]
            try:
                length, body = varint(buffer, pos + 1, end)
            except IndexError:
                break  # the length itself is cut
            except ValueError:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            stop = body + length
            if stop > end:
                break
            qos = (header & 0x06) >> 1
            if header & 0xF0 == PUBLISH and qos < 2:
                try:
                    topic, mid, payload = parse_publish(buffer, body, stop, qos, v5=v5)
                except (IndexError, ValueError):
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                pos = stop
                self._received(topic, payload, mid, qos)
                continue
            if header == PUBACK and self._puback(buffer[body:stop]):
                pos = stop
                continue
            # Anything else (acks, pings, QoS 2) goes to paho's handler for that packet.
            self._read_pos = pos = stop
            self._in_packet = {
                "command": header,
                "have_remaining": 1,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": length,
                "packet": bytearray(buffer[body:stop]),
                "to_process": 0,
                "pos": 0,
            }
            try:
                rc = self._packet_handle()
            except MalformedPacket:
                rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            self._in_packet = _empty_in_packet()
            if rc > 0 or self._read_buffer is not buffer:
                return rc  # an error, or the handler closed the connection
        self._read_pos = pos
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        return rc

    def _sock_close(self) -> None:
        self._read_buffer, self._read_pos = b"", 0  # what is left belongs to a dead connection
        with self._unacked_changed:
            self._sending = False
            self._unacked_changed.notify_all()
        super()._sock_close()

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH that paho's reader put together (it was cut by the end of a chunk)."""
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if qos == 2:
            return super()._handle_publish()  # not subscribed at QoS 2; paho's path handles it
        packet = self._in_packet["packet"]
        try:
            topic, mid, payload = parse_publish(
                packet, 0, len(packet), qos, v5=self._protocol == MQTTProtocolVersion.MQTTv5
            )
        except (IndexError, ValueError) as exc:
            raise MalformedPublishError(f"malformed PUBLISH ({len(packet)} bytes)") from exc
        return self._received(topic, payload, mid, qos)

    def _received(self, topic: str, payload: bytes, mid: int, qos: int) -> MQTTErrorCode:
        self.deliver(topic, payload, mid, qos)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        if cmd == "PUBACK" and self._puback(self._in_packet["packet"]):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)

    def _puback(self, body: bytes | bytearray) -> bool:
        """Take a PUBACK body for one of `publish_many`'s messages; False if it is paho's."""
        if len(body) < 2:
            return False
        return self._acked((body[0] << 8) | body[1], body[2] if len(body) > 2 else 0)

    def _handle_connack(self) -> MQTTErrorCode:
        """Resend our unacknowledged messages before any new one goes out: the whole CONNACK
        is handled under the lock `publish_many` takes (on_connect runs inside it)."""
        with self._unacked_changed:
            rc = super()._handle_connack()
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self.is_connected():
                if self._unacked:
                    # DUP only on what went out before; the rest goes out for the first time
                    again = b"".join(
                        bytes([p[0] | 0x08]) + p[1:] if sent else p
                        for p, sent in self._unacked.values()
                    )
                    self._unacked = {mid: (p, True) for mid, (p, _) in self._unacked.items()}
                    self._packet_queue(PUBLISH, again, 0, 1)
                self._sending = True
                self._unacked_changed.notify_all()
        return rc

    def _packet_write(self) -> MQTTErrorCode:
        """One writer at a time: `ack_many` writes from the gateway's thread, and paho from the
        caller's while no loop thread runs (a `connect`), the loop from its own."""
        with self._write_lock:
            return super()._packet_write()

    # -- publishing ----------------------------------------------------------------------

    def publish_many(
        self,
        messages: Sequence[tuple[str, bytes]],
        qos: int,
        max_inflight: int,
        timeout_s: float,
    ) -> None:
        """Publish these messages in order, as few writes as the in-flight limit allows.

        QoS 1 messages are kept until acknowledged and resent after a reconnect; at most
        `max_inflight` (<= 65,535, the packet ids there are) are kept, connected or not, so
        this waits for acks, or for the broker to come back; TimeoutError when no room came
        within `timeout_s`. QoS 0 messages published while disconnected are dropped.
        """
        check_publish_args(qos, max_inflight)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        step = max(1, max_inflight // 4)  # the next run goes out while earlier ones are acked
        for first in range(0, len(messages), step):
            run = messages[first : first + step]
            fits = functools.partial(self._fits, len(run), max_inflight)
            with self._unacked_changed:
                if qos and not self._unacked_changed.wait_for(fits, timeout_s):
                    raise TimeoutError(
                        f"{len(self._unacked)} messages unacknowledged for {timeout_s:g} s"
                    )
                packets = []
                for topic, payload in run:
                    mid = 0
                    if qos:
                        mid = self._mid_generate()
                        while mid in self._unacked:  # ends: fewer than 65,535 are kept
                            mid = self._mid_generate()
                    packet = publish_packet(topic.encode(), payload, mid, qos, v5=v5)
                    if qos:
                        self._unacked[mid] = (packet, self._sending)
                    packets.append(packet)
                if self._sending:
                    # qos=1 in paho's queue entry only keeps it from treating this as its own
                    # QoS 0 message (which would carry an MQTTMessageInfo)
                    self._packet_queue(PUBLISH, b"".join(packets), 0, 1)

    def _fits(self, count: int, max_inflight: int) -> bool:
        return len(self._unacked) + count <= max_inflight

    def unacked(self) -> int:
        with self._unacked_changed:
            return len(self._unacked)

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until every QoS 1 message of `publish_many` is acknowledged."""
        with self._unacked_changed:
            return self._unacked_changed.wait_for(lambda: not self._unacked, timeout_s)

    def _acked(self, mid: int, reason: int) -> bool:
        with self._unacked_changed:
            if self._unacked.pop(mid, None) is None:
                return False  # one of paho's own (a SUBSCRIBE's, a paho publish)
            if reason >= 0x80:  # MQTT 5: the broker refused it; sending it again won't help
                self.refused += 1
                log.warning("the broker refused message %d: reason code 0x%02x", mid, reason)
            self._unacked_changed.notify_all()
            return True

    # -- acknowledging -------------------------------------------------------------------

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 packet ids, in this order, as one write."""
        if not mids:
            return
        ids = np.asarray(mids, dtype=np.uint16)
        packets = np.empty((len(ids), 4), dtype=np.uint8)
        packets[:, 0] = PUBACK
        packets[:, 1] = 2  # remaining length: the id; MQTT 5 reads that as reason "success"
        packets[:, 2] = ids >> 8
        packets[:, 3] = ids & 0xFF
        self._packet_queue(PUBACK, packets.tobytes(), 0, 1)
        # Written now, from this thread, not after paho's loop wakes up and finishes reading
        # its chunks: the broker sends at most its in-flight limit of messages before our
        # acks, so a late ack stalls the stream (`_packet_write` is locked for this).
        self.loop_write()


def _empty_in_packet() -> Any:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(),
        "to_process": 0,
        "pos": 0,
    }
