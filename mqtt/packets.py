"""MQTT packet framing for the fast path: the few byte layouts it cuts and builds itself."""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes

PUBACK = PacketTypes.PUBACK << 4
PUBLISH = PacketTypes.PUBLISH << 4


def remaining_length(value: int) -> bytes:
    """`value` as MQTT's variable byte integer."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def varint(data: bytes | bytearray, pos: int, stop: int) -> tuple[int, int]:
    """The variable byte integer at data[pos] (a remaining length, a property length) and the
    position after it. IndexError when it runs past `stop`; ValueError past 4 bytes."""
    value, shift = 0, 0
    while True:
        if pos >= stop:
            raise IndexError(pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("a variable byte integer longer than 4 bytes")


def publish_packet(topic: bytes, payload: bytes, mid: int, qos: int, *, v5: bool) -> bytes:
    variable = len(topic).to_bytes(2, "big") + topic
    if qos:
        variable += mid.to_bytes(2, "big")
    if v5:
        variable += b"\x00"  # no properties
    length = len(variable) + len(payload)
    return bytes([PUBLISH | qos << 1]) + remaining_length(length) + variable + payload


def parse_publish(
    data: bytes | bytearray, start: int, stop: int, qos: int, *, v5: bool
) -> tuple[str, int, bytes]:
    """Topic, packet id and payload of the PUBLISH body data[start:stop]; MQTT 5 properties are
    skipped. IndexError when the body is shorter than its own lengths say (ValueError: a
    property length over 4 bytes)."""
    end = start + 2 + ((data[start] << 8) | data[start + 1])
    if end > stop:
        raise IndexError(end)
    topic = data[start + 2 : end].decode("utf-8", "replace")  # a bad topic is rejected later
    mid = 0
    if qos:
        if end + 2 > stop:
            raise IndexError(end)
        mid = (data[end] << 8) | data[end + 1]
        end += 2
    if v5:
        length, end = varint(data, end, stop)
        end += length
        if end > stop:
            raise IndexError(end)
    return topic, mid, bytes(data[end:stop])
