"""mqtt/_publishes.c: runs of whole QoS 0/1 PUBLISH packets cut from a read buffer in C take
exactly what `mqtt.packets` would parse, and stop at the first packet the Python loop must see
(another type, QoS 2, cut, malformed), at its first byte."""

from __future__ import annotations

import random

import pytest

from mqtt.packets import PUBACK, PUBLISH, parse_publish, publish_packet, remaining_length, varint
from tests.services import require_services

try:
    from mqtt._publishes import publishes
except ImportError:
    message = "mqtt._publishes is not built (a C compiler at `pip install -e .`)"
    if require_services():
        pytest.fail(f"FACILITY_REQUIRE_SERVICES=1 and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)

Taken = tuple[list[tuple[str, bytes, int, int]], int]


def reference(buffer: bytes, pos: int, v5: bool) -> Taken:
    """What the C function must do, written with the Python parser."""
    out: list[tuple[str, bytes, int, int]] = []
    while pos < len(buffer):
        header = buffer[pos]
        qos = (header & 0x06) >> 1
        if header & 0xF0 != PUBLISH or qos > 1:
            break
        try:
            length, body = varint(buffer, pos + 1, len(buffer))
        except (IndexError, ValueError):
            break
        if body + length > len(buffer):
            break
        try:
            topic, mid, payload = parse_publish(buffer, body, body + length, qos, v5=v5)
        except (IndexError, ValueError):
            break
        out.append((topic, payload, mid, qos))
        pos = body + length
    return out, pos


def _packet(rng: random.Random, v5: bool) -> bytes:
    pick = rng.random()
    topic = rng.choice(["facility/v1/s/b/pump/p1/telemetry", "t", "", "é/ü", "x" * 300])
    payload = rng.randbytes(rng.choice([0, 1, 30, 200, 20_000]))
    if pick < 0.6:
        qos = rng.choice([0, 1])
        if v5 and rng.random() < 0.3:  # with properties: a content type
            prop = b"\x03" + len(b"json").to_bytes(2, "big") + b"json"
            variable = len(topic.encode()).to_bytes(2, "big") + topic.encode()
            variable += rng.randrange(1, 65535).to_bytes(2, "big") if qos else b""
            variable += remaining_length(len(prop)) + prop
            body = variable + payload
            return bytes([PUBLISH | qos << 1]) + remaining_length(len(body)) + body
        return publish_packet(topic.encode(), payload, rng.randrange(1, 65535), qos, v5=v5)
    if pick < 0.7:
        return bytes([PUBACK, 2]) + rng.randbytes(2)
    if pick < 0.75:
        return bytes([0xD0, 0])  # PINGRESP
    if pick < 0.8:
        return publish_packet(topic.encode(), payload, 7, 2, v5=v5)  # QoS 2
    if pick < 0.85:  # a topic length past the body
        return bytes([PUBLISH, 4]) + b"\x00\x09ab"
    if pick < 0.9:  # QoS 1 without its packet id
        return bytes([PUBLISH | 2, 3]) + b"\x00\x01a"
    if pick < 0.95:  # a remaining length of five bytes
        return bytes([PUBLISH, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    return b"\xe0"  # a lone DISCONNECT header, cut


@pytest.mark.parametrize("v5", [False, True])
def test_runs_are_what_the_python_parser_takes(v5: bool) -> None:
    rng = random.Random(int(v5))
    for _ in range(300):
        buffer = b"".join(_packet(rng, v5) for _ in range(rng.randint(0, 12)))
        buffer = buffer[: rng.randint(0, len(buffer))] if rng.random() < 0.5 else buffer
        for pos in {0, rng.randint(0, max(len(buffer), 0)), len(buffer)}:
            assert publishes(buffer, pos, v5) == reference(buffer, pos, v5)


def test_a_topic_that_is_not_utf8_is_decoded_with_replacement() -> None:
    packet = bytes([PUBLISH, 5]) + b"\x00\x02\xff\xfe" + b"x"
    assert publishes(packet, 0, False) == ([("\ufffd\ufffd", b"x", 0, 0)], len(packet))


def test_a_run_stops_at_the_first_packet_the_loop_must_see() -> None:
    one = publish_packet(b"a/b", b"{}", 9, 1, v5=False)
    ack = bytes([PUBACK, 2, 0, 5])
    run, pos = publishes(one + one + ack + one, 0, False)
    assert run == [("a/b", b"{}", 9, 1)] * 2
    assert pos == 2 * len(one)
    assert publishes(one + one[:-1], 0, False) == ([("a/b", b"{}", 9, 1)], len(one))


def test_a_position_outside_the_buffer_is_refused() -> None:
    for pos in (-1, 4):
        with pytest.raises(ValueError, match="outside the buffer"):
            publishes(b"abc", pos, False)
